#include "domain/frame_codec.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>

#include "domain/proto_json_reader.h"
#include "domain/proto_json_writer.h"

namespace chat::gateway {
namespace {

// A lenient second look, for the ref of a frame the strict parse refused.
std::optional<uint32_t> ReadRef(std::string_view text) {
  google::protobuf::Struct s;
  google::protobuf::util::JsonParseOptions opts;
  if (!google::protobuf::util::JsonStringToMessage(std::string(text), &s, opts).ok()) return std::nullopt;
  auto it = s.fields().find("ref");
  if (it == s.fields().end() || it->second.kind_case() != google::protobuf::Value::kNumberValue)
    return std::nullopt;
  double v = it->second.number_value();
  if (v < 0 || v > 4294967295.0 || std::floor(v) != v) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

ParsedFrame ParseClientFrame(std::string_view text) {
  ParsedFrame out;
  chat::v1::ClientFrame frame;
  if (!TryReadProtoJson(text, frame)) {
    // Outside the fast reader's subset (or invalid): protobuf's parser decides, with its own errors.
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    frame.Clear();
    auto st = google::protobuf::util::JsonStringToMessage(std::string(text), &frame, opts);
    if (!st.ok()) {
      out.ref = ReadRef(text);
      out.frame = absl::InvalidArgumentError("malformed frame: " + std::string(st.message()));
      return out;
    }
  }
  if (frame.has_ref()) out.ref = frame.ref();
  if (frame.body_case() == chat::v1::ClientFrame::BODY_NOT_SET) {
    out.frame = absl::InvalidArgumentError("frame has no body");
    return out;
  }
  out.frame = std::move(frame);
  return out;
}

std::string EncodeServerFrame(const chat::v1::ServerFrame& frame) {
  std::string out;
  out.reserve(160);
  if (AppendProtoJson(frame, out)) return out;
  out.clear();
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = false;
  opts.preserve_proto_field_names = false;
  // false, 0 and [] are written out ("online":false), so clients need no defaults of their own.
  opts.always_print_primitive_fields = true;
  // Cannot fail for a valid message of a known type.
  (void)google::protobuf::util::MessageToJsonString(frame, &out, opts);
  return out;
}

chat::v1::ServerFrame ErrorFrame(std::optional<uint32_t> ref, std::string_view code, std::string_view message,
                                 uint32_t retry_after_ms) {
  chat::v1::ServerFrame f;
  if (ref) f.set_ref(*ref);
  auto* e = f.mutable_error();
  e->set_code(std::string(code));
  e->set_message(std::string(message));
  if (retry_after_ms > 0) e->set_retry_after_ms(retry_after_ms);
  return f;
}

chat::v1::ServerFrame AckFrame(const chat::v1::PostMessageReply& sent) {
  const auto& m = sent.message();
  chat::v1::ServerFrame f;
  auto* a = f.mutable_ack();
  a->set_room(m.room());
  a->set_seq(m.seq());
  a->set_id(m.id());
  *a->mutable_ts() = m.ts();
  a->set_duplicate(sent.duplicate());
  return f;
}

}  // namespace chat::gateway
