#pragma once
// Process-level helpers for main(): signal handling and gRPC server extras.

#include <string>

namespace grpc {
class ServerBuilder;
}

namespace chat {

// Blocks SIGINT and SIGTERM in the calling thread; call first in main, so every thread started later
// inherits the mask and only WaitForShutdownSignal receives them.
void BlockShutdownSignals();
// Waits for SIGINT or SIGTERM; returns the signal's name.
std::string WaitForShutdownSignal();

// Turns off Abseil's mutex deadlock detection, which guards every lock gRPC takes. Debian builds
// Abseil without NDEBUG, so the detection is on and set to abort: each lock taken while another is
// held updates a process-wide lock graph under one global spinlock (~60 ns a nested pair, more under
// contention), and a lock order that merely could deadlock kills the server. Abseil's own release
// builds leave it off; the unit tests keep the library's default.
void DisableMutexDeadlockDetection();

// grpc.health.v1.Health and server reflection, on every gRPC server; call before building the server.
void EnableHealthAndReflection();

}  // namespace chat
