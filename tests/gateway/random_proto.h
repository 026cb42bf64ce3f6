#pragma once
// Fills any message with random values by reflection (every oneof member, proto3 optionals, repeated
// fields, strings with escapes and non-ASCII, integer extremes, timestamps of every precision), for the
// JSON codec tests that compare ours with protobuf's.

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace chat::gateway::test_support {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

class RandomFiller {
 public:
  explicit RandomFiller(uint32_t seed) : rng_(seed) {}

  void Fill(Message& m, int depth) {
    const auto* d = m.GetDescriptor();
    const auto* r = m.GetReflection();
    if (d->full_name() == "google.protobuf.Timestamp") {
      auto& ts = static_cast<google::protobuf::Timestamp&>(m);
      // 0001-01-01 .. 9999-12-31, the range RFC 3339 timestamps cover; nanos of every precision.
      ts.set_seconds(std::uniform_int_distribution<int64_t>(-62135596800, 253402300799)(rng_));
      static constexpr int32_t kNanos[] = {0, 5000000, 123000000, 123456000, 123456789, 1, 999999999};
      ts.set_nanos(kNanos[Pick(std::size(kNanos))]);
      return;
    }
    // One member of each oneof, or none.
    for (int i = 0; i < d->oneof_decl_count(); ++i) {
      const auto* o = d->oneof_decl(i);
      if (o->is_synthetic()) continue;
      const int k = static_cast<int>(Pick(o->field_count() + 1));
      if (k < o->field_count()) SetField(m, *o->field(k), depth);
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const auto& f = *d->field(i);
      if (f.real_containing_oneof() != nullptr) continue;
      if (f.is_repeated()) {
        const size_t n = Pick(4);
        for (size_t k = 0; k < n; ++k) AddValue(m, f, depth);
      } else if (Pick(4) != 0) {
        SetField(m, f, depth);
      }
    }
    (void)r;
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::string Text() {
    static const std::vector<std::string> kPieces = {"",
                                                     "general",
                                                     "a\"b",
                                                     "back\\slash",
                                                     "line\nbreak\ttab\r",
                                                     std::string("\x01\x1f\x7f", 3),
                                                     "<b>&amp;</b>",
                                                     "héllo wörld",
                                                     "日本語",
                                                     "emoji 😀",
                                                     "\u2028\u2029",
                                                     "\xc2\xad soft hyphen",
                                                     std::string("nul\0inside", 10),
                                                     "/slash/",
                                                     "{\"json\":[1,2]}"};
    std::string s;
    const size_t n = Pick(4);
    for (size_t i = 0; i < n; ++i) s += kPieces[Pick(kPieces.size())];
    return s;
  }

  template <typename Int>
  Int Integer() {
    switch (Pick(4)) {
      case 0:
        return 0;
      case 1:
        return std::numeric_limits<Int>::max();
      case 2:
        return std::numeric_limits<Int>::min();
      default:
        return std::uniform_int_distribution<Int>(std::numeric_limits<Int>::min())(rng_);
    }
  }

  double Double() {
    static constexpr double kValues[] = {0.0, 1.0, -2.5, 0.1, 1234.5678, 1e21, 1e-7, 3.141592653589793};
    return kValues[Pick(std::size(kValues))];
  }

  void SetField(Message& m, const FieldDescriptor& f, int depth) {
    const auto* r = m.GetReflection();
    switch (f.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(&m, &f, Integer<int32_t>());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(&m, &f, Integer<uint32_t>());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(&m, &f, Integer<int64_t>());
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(&m, &f, Integer<uint64_t>());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(&m, &f, Double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&m, &f, static_cast<float>(Double()));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(&m, &f, Pick(2) == 1);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnumValue(&m, &f, f.enum_type()->value(0)->number());
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(&m, &f, Text());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 4) Fill(*r->MutableMessage(&m, &f), depth + 1);
        break;
    }
  }

  void AddValue(Message& m, const FieldDescriptor& f, int depth) {
    const auto* r = m.GetReflection();
    switch (f.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->AddInt32(&m, &f, Integer<int32_t>());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->AddUInt32(&m, &f, Integer<uint32_t>());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->AddInt64(&m, &f, Integer<int64_t>());
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->AddUInt64(&m, &f, Integer<uint64_t>());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->AddDouble(&m, &f, Double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->AddFloat(&m, &f, static_cast<float>(Double()));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->AddBool(&m, &f, Pick(2) == 1);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->AddEnumValue(&m, &f, f.enum_type()->value(0)->number());
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(&m, &f, Text());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 4) Fill(*r->AddMessage(&m, &f), depth + 1);
        break;
    }
  }

  std::mt19937 rng_;
};

}  // namespace chat::gateway::test_support
