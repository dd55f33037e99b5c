// Clock types shared by every module. Logic takes `now` as an argument so tests drive time.
#pragma once

#include <chrono>

namespace xrayd {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
using WallClock = std::chrono::system_clock;

}  // namespace xrayd
