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

// grpc.health.v1.Health and server reflection, on every gRPC server; call before building the server.
void EnableHealthAndReflection();

}  // namespace chat
