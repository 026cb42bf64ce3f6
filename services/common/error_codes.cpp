#include "error_codes.h"

#include <string>

namespace chat {

std::string_view ErrorCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return code::kBadRequest;
    case absl::StatusCode::kUnauthenticated:
      return code::kUnauthorized;
    case absl::StatusCode::kPermissionDenied:
      return code::kForbidden;
    case absl::StatusCode::kNotFound:
      return code::kNotFound;
    case absl::StatusCode::kResourceExhausted:
      return code::kRateLimited;
    case absl::StatusCode::kOutOfRange:
      return code::kTooLarge;
    case absl::StatusCode::kFailedPrecondition:
      return code::kMuted;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return code::kUnavailable;
    default:
      return code::kInternal;
  }
}

absl::Status StatusFromErrorCode(std::string_view c, std::string_view msg) {
  std::string message(msg);
  if (c == code::kBadRequest) return absl::InvalidArgumentError(message);
  if (c == code::kUnauthorized) return absl::UnauthenticatedError(message);
  if (c == code::kForbidden) return absl::PermissionDeniedError(message);
  if (c == code::kNotFound) return absl::NotFoundError(message);
  if (c == code::kRateLimited) return absl::ResourceExhaustedError(message);
  if (c == code::kTooLarge) return absl::OutOfRangeError(message);
  if (c == code::kMuted) return absl::FailedPreconditionError(message);
  if (c == code::kUnavailable) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace chat
