// libFuzzer target over the gateway's frame decoding and dispatch: every input is one text frame given
// to a ChatConnection, whose backends answer at once (alternating success and each error code), so the
// parse, validation, rate limiting, join/resume seams and slash-command paths all run. Finds crashes,
// sanitizer reports and broken invariants (every reply must be valid JSON of a ServerFrame). The same
// bytes also go through the WebSocketFrameReader (the gateway's framing of what the socket gives), cut
// into chunks at varying points: at most one error event, always the last, and every text message valid
// UTF-8.
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/text_rules.h"
#include "domain/chat_connection.h"
#include "domain/frame_codec.h"
#include "domain/websocket_frame_reader.h"

namespace {

using namespace chat::gateway;

const char* const kCodes[] = {"",      "bad_request", "forbidden", "not_found", "unavailable",
                              "muted", "internal"};

struct AnsweringMessages : MessagesBackend {
  unsigned n = 0;
  void Call(chat::v1::GatewayRequest r, Callback<chat::v1::GatewayReply> done) override {
    chat::v1::GatewayReply reply;
    reply.set_correlation_id(r.correlation_id());
    const char* code = kCodes[n++ % (sizeof(kCodes) / sizeof(kCodes[0]))];
    if (*code) {
      reply.mutable_error()->set_code(code);
      reply.mutable_error()->set_message("fuzz");
    } else if (r.has_join()) {
      reply.mutable_joined()->mutable_room()->set_room(r.join().room());
      reply.mutable_joined()->mutable_room()->set_last_seq(n % 7);
    } else if (r.has_send()) {
      auto* m = reply.mutable_sent()->mutable_message();
      m->set_room(r.send().room());
      m->set_seq(n);
      m->set_text(r.send().text());
    } else if (r.has_history()) {
      auto* page = reply.mutable_history()->mutable_page();
      page->set_room(r.history().room());
      for (int64_t s = r.history().after_seq() + 1; s <= r.history().after_seq() + (n % 4); ++s) {
        page->add_messages()->set_seq(s);
      }
    } else if (r.has_open_dm()) {
      reply.mutable_room()->set_room("dm:fuzz");
    } else {
      reply.mutable_done();
    }
    done(std::move(reply));
  }
};

struct AnsweringPresence : PresenceBackend {
  void Call(chat::v1::PresenceRequest, Callback<chat::v1::PresenceReply> done) override {
    done(chat::v1::PresenceReply());
  }
};

struct ImmediateFanout : RoomFanout {
  void Enter(const std::string&, const std::string&, std::weak_ptr<RoomMember>,
             std::function<void(absl::Status)> ready) override {
    ready(absl::OkStatus());
  }
  void Exit(const std::string&, const std::string&) override {}
};

void CheckFrame(const std::shared_ptr<const std::string>& bytes) {
  chat::v1::ServerFrame f;
  if (!google::protobuf::util::JsonStringToMessage(*bytes, &f).ok()) std::abort();
}

}  // namespace

void FuzzFraming(const uint8_t* data, size_t size) {
  WebSocketFrameReader reader(size > 0 ? 16 + data[0] * 64 : 1024);
  std::vector<WebSocketEvent> events;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t step = size > 1 ? 1 + data[1] % 17 : 1;
  for (size_t at = 0; at < bytes.size(); at += step) reader.Feed(bytes.substr(at, step), events);
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.kind == WebSocketEvent::Kind::kError && i + 1 != events.size()) std::abort();
    if (e.kind == WebSocketEvent::Kind::kText && !chat::IsValidUtf8(e.payload)) std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static chat::MetricsRegistry registry;
  static ConnectionMetrics metrics(registry);
  AnsweringMessages messages;
  AnsweringPresence presence;
  ImmediateFanout fanout;
  bool admin = size > 0 && (data[0] & 1);
  ChatConnection conn(
      ConnectionIdentity{"fuzzer", admin, "gw-1", "gw"}, ConnectionLimits{}, messages, presence, fanout,
      metrics,
      ChatConnection::Io{[](std::function<void()> fn) { fn(); },
                         [](std::chrono::milliseconds, std::function<void()> fn) { fn(); }, CheckFrame,
                         [](uint16_t, std::string) {}, std::weak_ptr<RoomMember>()});
  conn.Start();
  // Up to four frames per input, split at 0x00, so sequences (join then send, resume then deliveries)
  // are reached.
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  for (int i = 0; i < 4 && start <= input.size(); ++i) {
    size_t end = input.find('\0', start);
    std::string frame = input.substr(start, end == std::string::npos ? std::string::npos : end - start);
    conn.OnText(frame);
    conn.OnDelivery(Delivery{"general", static_cast<int64_t>(i + 1),
                             std::make_shared<const std::string>("{\"message\":{}}")});
    if (end == std::string::npos) break;
    start = end + 1;
  }
  conn.Close();
  FuzzFraming(data, size);
  return 0;
}
