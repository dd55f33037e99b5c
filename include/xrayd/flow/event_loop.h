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
    // When the answers to requests in flight must be handled.
    enum class Answers {
        at_once,       // as they arrive: the wait ends for each
        at_next_wake,  // may wait until this wait ends anyway (max_wait, wakeup()): the caller
                       // bounds max_wait by what it tolerates (the pipeline: an open batch's
                       // deadline, within the linger)
    };

    // Does the work that is ready (start transfers, handle completions and due retries),
    // then waits until more work may be ready, `max_wait` has passed, or wakeup() is called.
    virtual void run_once(Duration max_wait, Answers answers) noexcept = 0;
    void run_once(Duration max_wait) noexcept { run_once(max_wait, Answers::at_once); }
};

}  // namespace xrayd
