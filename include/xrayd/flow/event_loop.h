// EventLoop: the I/O loop the pipeline thread drives between batches (the uploader's curl
// multi, the local sink's writes), and the Waker that ends its wait.
#pragma once

#include <xrayd/common/time.h>
#include <xrayd/flow/flow_control.h>

namespace xrayd {

// The pipeline thread alternates between feeding batches to a BatchSink and run_once() on
// the same object's EventLoop. run_once() is for that one thread only; wakeup() (Waker) for
// any thread.
class EventLoop : public Waker {
public:
    // Does the work that is ready (start transfers, handle completions and due retries),
    // then waits until more work may be ready, `max_wait` has passed, or wakeup() is called.
    virtual void run_once(Duration max_wait) noexcept = 0;
};

}  // namespace xrayd
