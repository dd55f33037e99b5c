// name_this_thread: names the calling thread, so `top -H`, perf and /proc tell threads apart.
#pragma once

#include <pthread.h>

namespace xrayd {

// `name`: at most 15 characters (the kernel's limit); a longer one leaves the name unchanged.
// Best effort: a failure only costs a less readable process listing.
inline void name_this_thread(const char* name) noexcept {
    (void)::pthread_setname_np(::pthread_self(), name);
}

}  // namespace xrayd
