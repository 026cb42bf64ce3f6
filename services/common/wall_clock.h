#pragma once
// The wall clock as a protobuf Timestamp, to the microsecond. protobuf 3.21's
// TimeUtil::GetCurrentTime() gives whole seconds on Linux (nanos always 0): lags measured against it
// came out negative for most messages, and timestamps we send carried no fraction.

#include <chrono>

#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace chat {

inline google::protobuf::Timestamp WallClockNow() {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count());
}

}  // namespace chat
