#pragma once
// The proto3 JSON mapping of a message, written straight from reflection: compact, lowerCamelCase
// names, every singular scalar and repeated field written (false, 0, "" and [] included), int64 as
// strings, Timestamp as RFC 3339. protobuf's MessageToJsonString gives the same JSON, but it first
// serializes the message and re-reads the bytes through a type resolver: on the gateway that cost
// ~40 % of the CPU of a send (profile in bench/README.md); this is one pass over the fields.

#include <google/protobuf/message.h>

#include <string>

namespace chat::gateway {

// Appends the JSON of `message` to `out`. Returns false (leaving `out` unspecified) for a message
// using a well-known type other than Timestamp, which this writer does not map: the caller falls
// back to protobuf's printer.
bool AppendProtoJson(const google::protobuf::Message& message, std::string& out);

}  // namespace chat::gateway
