#pragma once
// The client-visible error codes of DESIGN.md, and how statuses map onto them and onto gRPC.

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/status.h"

namespace chat {

namespace code {
inline constexpr std::string_view kBadRequest = "bad_request";
inline constexpr std::string_view kUnauthorized = "unauthorized";
inline constexpr std::string_view kForbidden = "forbidden";
inline constexpr std::string_view kNotFound = "not_found";
inline constexpr std::string_view kRateLimited = "rate_limited";
inline constexpr std::string_view kTooLarge = "too_large";
inline constexpr std::string_view kMuted = "muted";
inline constexpr std::string_view kUnavailable = "unavailable";
inline constexpr std::string_view kInternal = "internal";
}  // namespace code

// InvalidArgument→bad_request, Unauthenticated→unauthorized, PermissionDenied→forbidden,
// NotFound→not_found, ResourceExhausted→rate_limited, OutOfRange→too_large, FailedPrecondition→muted,
// Unavailable/Aborted/DeadlineExceeded/Cancelled→unavailable, anything else→internal.
std::string_view ErrorCodeFor(const absl::Status& status);
// The inverse, for errors that arrive as codes over the internal streams.
absl::Status StatusFromErrorCode(std::string_view code, std::string_view message);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace chat
