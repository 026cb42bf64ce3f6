#pragma once
// A fast reader for the common shape of proto3 JSON: the frames clients send. protobuf's
// JsonStringToMessage goes JSON -> object writer -> binary -> message and took ~16 % of the gateway's
// CPU per send (bench/README.md); this reads the text once into the message by reflection.
//
// It is a fast path, not a second parser with opinions: it accepts only a strict subset (objects,
// known field names, strings, plain integers, true/false, arrays, no nulls, no field twice, one member
// of a oneof) and on anything else answers false, so the caller asks protobuf's parser, which then
// decides, with its own error. Whatever it accepts, protobuf's parser reads to the same message
// (proto_json_reader_test checks that).

#include <google/protobuf/message.h>

#include <string_view>

namespace chat::gateway {

// True when `json` was read whole into `out` (cleared first). False: not in the subset, `out` is
// unspecified; use protobuf's parser.
bool TryReadProtoJson(std::string_view json, google::protobuf::Message& out);

}  // namespace chat::gateway
