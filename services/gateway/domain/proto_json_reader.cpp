#include "domain/proto_json_reader.h"

#include <google/protobuf/descriptor.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

#include "common/text_rules.h"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  bool ReadDocument(Message& m) {
    if (!ReadObject(m, 0)) return false;
    SkipSpace();
    return pos_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 8;

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static void AppendUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  bool ReadHex4(uint32_t& v) {
    if (s_.size() - pos_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  // A JSON string, unescaped into `out`; valid UTF-8 only, lone surrogates refused.
  bool ReadString(std::string& out) {
    if (!Consume('"')) return false;
    out.clear();
    size_t run = pos_;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        out.append(s_.data() + run, pos_ - run);
        ++pos_;
        return IsValidUtf8(out);
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out.append(s_.data() + run, pos_ - run);
      if (++pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!ReadHex4(cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return false;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (s_.size() - pos_ < 6 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return false;
            pos_ += 2;
            if (!ReadHex4(lo) || lo < 0xdc00 || lo > 0xdfff) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return false;
      }
      run = pos_;
    }
    return false;
  }

  // -?digits, bare or in quotes (proto3 JSON writes 64-bit integers quoted and accepts both for every
  // integer type); fractions and exponents are left to protobuf's parser.
  template <typename Int>
  bool ReadInteger(Int& v) {
    SkipSpace();
    const bool quoted = pos_ < s_.size() && s_[pos_] == '"';
    if (quoted) ++pos_;
    const size_t begin = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    const size_t digits = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == digits || (pos_ - digits > 1 && s_[digits] == '0')) return false;
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) return false;
    auto [end, ec] = std::from_chars(s_.data() + begin, s_.data() + pos_, v);
    if (ec != std::errc() || end != s_.data() + pos_) return false;
    if (!quoted) return true;
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    ++pos_;
    return true;
  }

  bool ReadLiteral(std::string_view word) {
    SkipSpace();
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool ReadBool(bool& v) {
    if (ReadLiteral("true")) {
      v = true;
      return true;
    }
    if (ReadLiteral("false")) {
      v = false;
      return true;
    }
    return false;
  }

  static const FieldDescriptor* FindField(const Descriptor& d, std::string_view key) {
    for (int i = 0; i < d.field_count(); ++i) {
      const FieldDescriptor* f = d.field(i);
      if (f->json_name() == key || f->name() == key) return f;
    }
    return nullptr;
  }

  // One value of `f` (an element when f is repeated).
  bool ReadValue(Message& m, const FieldDescriptor& f, int depth) {
    const Reflection& r = *m.GetReflection();
    const bool rep = f.is_repeated();
    switch (f.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v;
        if (!ReadInteger(v)) return false;
        rep ? r.AddInt32(&m, &f, v) : r.SetInt32(&m, &f, v);
        return true;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v;
        if (!ReadInteger(v)) return false;
        rep ? r.AddUInt32(&m, &f, v) : r.SetUInt32(&m, &f, v);
        return true;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        if (!ReadInteger(v)) return false;
        rep ? r.AddInt64(&m, &f, v) : r.SetInt64(&m, &f, v);
        return true;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v;
        if (!ReadInteger(v)) return false;
        rep ? r.AddUInt64(&m, &f, v) : r.SetUInt64(&m, &f, v);
        return true;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (!ReadBool(v)) return false;
        rep ? r.AddBool(&m, &f, v) : r.SetBool(&m, &f, v);
        return true;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        if (f.type() == FieldDescriptor::TYPE_BYTES) return false;  // base64: protobuf's parser
        if (!ReadString(scratch_)) return false;
        rep ? r.AddString(&m, &f, scratch_) : r.SetString(&m, &f, scratch_);
        return true;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        if (f.message_type()->file()->package() == "google.protobuf") return false;  // well-known types
        Message* sub = rep ? r.AddMessage(&m, &f) : r.MutableMessage(&m, &f);
        return ReadObject(*sub, depth + 1);
      }
      default:
        return false;  // floats, enums: protobuf's parser
    }
  }

  bool ReadObject(Message& m, int depth) {
    if (depth > kMaxDepth || !Consume('{')) return false;
    const Descriptor& d = *m.GetDescriptor();
    const Reflection& r = *m.GetReflection();
    uint64_t seen = 0;  // field indexes already read: a key twice goes to protobuf's parser
    if (Consume('}')) return true;
    std::string key;
    for (;;) {
      if (!ReadString(key) || !Consume(':')) return false;
      const FieldDescriptor* f = FindField(d, key);
      if (f == nullptr || f->is_map() || f->index() >= 64) return false;
      const uint64_t bit = uint64_t{1} << f->index();
      if ((seen & bit) != 0) return false;
      seen |= bit;
      if (const auto* oneof = f->real_containing_oneof(); oneof != nullptr && r.HasOneof(m, oneof))
        return false;
      if (f->is_repeated()) {
        if (!Consume('[')) return false;
        if (!Consume(']')) {
          do {
            if (!ReadValue(m, *f, depth)) return false;
          } while (Consume(','));
          if (!Consume(']')) return false;
        }
      } else if (!ReadValue(m, *f, depth)) {
        return false;
      }
      if (Consume('}')) return true;
      if (!Consume(',')) return false;
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string scratch_;
};

}  // namespace

bool TryReadProtoJson(std::string_view json, Message& out) {
  out.Clear();
  return Reader(json).ReadDocument(out);
}

}  // namespace chat::gateway
