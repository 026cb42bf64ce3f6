#include "domain/proto_json_writer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "absl/strings/escaping.h"
#include "common/json_string.h"

namespace chat::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

template <typename Int>
void AppendInt(Int v, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void AppendDouble(double v, std::string& out) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  }
}

void AppendDigits(int64_t v, int width, std::string& out) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 || n < width);
  while (n > 0) out.push_back(buf[--n]);
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protobuf's TimeUtil writes it.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string& out) {
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // civil_from_days (H. Hinnant): days since 1970-01-01 -> year, month, day.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  out.push_back('"');
  AppendDigits(year, 4, out);
  out.push_back('-');
  AppendDigits(month, 2, out);
  out.push_back('-');
  AppendDigits(day, 2, out);
  out.push_back('T');
  AppendDigits(rem / 3600, 2, out);
  out.push_back(':');
  AppendDigits(rem / 60 % 60, 2, out);
  out.push_back(':');
  AppendDigits(rem % 60, 2, out);
  if (nanos != 0) {
    out.push_back('.');
    if (nanos % 1000000 == 0) {
      AppendDigits(nanos / 1000000, 3, out);
    } else if (nanos % 1000 == 0) {
      AppendDigits(nanos / 1000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out += "Z\"";
}

bool AppendMessage(const Message& m, std::string& out);

bool AppendValue(const Message& m, const Reflection& r, const FieldDescriptor& f, int index,
                 std::string& out) {
  const bool rep = f.is_repeated();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      AppendInt(rep ? r.GetRepeatedInt32(m, &f, index) : r.GetInt32(m, &f), out);
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      AppendInt(rep ? r.GetRepeatedUInt32(m, &f, index) : r.GetUInt32(m, &f), out);
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      out.push_back('"');
      AppendInt(rep ? r.GetRepeatedInt64(m, &f, index) : r.GetInt64(m, &f), out);
      out.push_back('"');
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      out.push_back('"');
      AppendInt(rep ? r.GetRepeatedUInt64(m, &f, index) : r.GetUInt64(m, &f), out);
      out.push_back('"');
      return true;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(rep ? r.GetRepeatedDouble(m, &f, index) : r.GetDouble(m, &f), out);
      return true;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendDouble(rep ? r.GetRepeatedFloat(m, &f, index) : r.GetFloat(m, &f), out);
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r.GetRepeatedBool(m, &f, index) : r.GetBool(m, &f)) ? "true" : "false";
      return true;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v = rep ? r.GetRepeatedEnumValue(m, &f, index) : r.GetEnumValue(m, &f);
      if (const auto* ev = f.enum_type()->FindValueByNumber(v)) {
        AppendJsonString(out, ev->name());
      } else {
        AppendInt(v, out);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r.GetRepeatedStringReference(m, &f, index, &scratch) : r.GetStringReference(m, &f, &scratch);
      if (f.type() == FieldDescriptor::TYPE_BYTES) {
        out.push_back('"');
        out += absl::Base64Escape(s);
        out.push_back('"');
      } else {
        AppendJsonString(out, s);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return AppendMessage(rep ? r.GetRepeatedMessage(m, &f, index) : r.GetMessage(m, &f), out);
  }
  return false;
}

bool AppendMessage(const Message& m, std::string& out) {
  const auto* d = m.GetDescriptor();
  if (d->file()->package() == "google.protobuf") {
    if (d->full_name() != "google.protobuf.Timestamp") return false;
    const auto& ts = static_cast<const google::protobuf::Timestamp&>(m);
    AppendTimestamp(ts.seconds(), ts.nanos(), out);
    return true;
  }
  const Reflection& r = *m.GetReflection();
  out.push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor& f = *d->field(i);
    if (f.is_map()) return false;
    // Oneof members, proto3 optionals and message fields are written when set; plain scalars and
    // repeated fields always.
    if (!f.is_repeated() && f.has_presence() && !r.HasField(m, &f)) continue;
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out += f.json_name();
    out += "\":";
    if (f.is_repeated()) {
      out.push_back('[');
      const int n = r.FieldSize(m, &f);
      for (int k = 0; k < n; ++k) {
        if (k > 0) out.push_back(',');
        if (!AppendValue(m, r, f, k, out)) return false;
      }
      out.push_back(']');
    } else if (!AppendValue(m, r, f, 0, out)) {
      return false;
    }
  }
  out.push_back('}');
  return true;
}

}  // namespace

bool AppendProtoJson(const Message& message, std::string& out) { return AppendMessage(message, out); }

}  // namespace chat::gateway
