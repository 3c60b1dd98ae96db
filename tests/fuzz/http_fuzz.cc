// libFuzzer target for the HTTP/1.1 request parser (net/http_request_parser,
// our framing checks in front of libhttp-parser). The first input byte picks
// a split point; the rest is one connection's bytes, fed once whole and once
// in two reads cut there, as HttpConnection feeds them. Both runs must
// return the same requests (method, target, header count, body) and both
// end in an error or neither: where TCP cuts a stream must not change how
// it is framed. Which error is reported may differ (a read that holds more
// may meet a later error first), so only its presence is compared.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./http_fuzz -max_total_time=60 <scratch dir> tests/fuzz/corpus/http_fuzz
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/http_request_parser.h"

namespace turnkey::net {
namespace {

void Check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

struct Outcome {
  std::vector<std::string> requests;
  bool error = false;

  friend bool operator==(const Outcome&, const Outcome&) = default;
};

std::string Summary(const HttpRequest& request) {
  return request.method + " " + request.target + " " + std::to_string(request.headers.size()) +
         " " + std::to_string(request.body.size()) + ":" + request.body;
}

// Feeds `parts` in turn, keeping what a Parse call leaves unconsumed.
Outcome Run(const std::vector<base::ByteView>& parts) {
  HttpParserLimits limits;
  limits.max_header_bytes = 512;
  limits.max_target_bytes = 128;
  limits.max_body_bytes = 1024;
  HttpRequestParser parser(limits);
  Outcome outcome;
  base::Bytes buffer;
  for (base::ByteView part : parts) {
    buffer.insert(buffer.end(), part.begin(), part.end());
    while (!buffer.empty()) {
      const HttpRequestParser::Result result = parser.Parse(buffer);
      Check(result.consumed <= buffer.size());
      if (result.status == HttpRequestParser::Status::kError) {
        Check(parser.error() != HttpParseError::kNone);
        Check(parser.error_detail() != kFramingDisagreement);
        outcome.error = true;
        return outcome;
      }
      if (result.status == HttpRequestParser::Status::kNeedMore) {
        Check(result.consumed == buffer.size());
        buffer.clear();
        break;
      }
      outcome.requests.push_back(Summary(parser.TakeRequest()));
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(result.consumed));
      if (parser.upgraded()) {
        return outcome;  // the rest is another protocol's
      }
    }
  }
  return outcome;
}

}  // namespace
}  // namespace turnkey::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using turnkey::base::ByteView;
  if (size == 0) {
    return 0;
  }
  const ByteView input(data + 1, size - 1);
  const size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
  const auto whole = turnkey::net::Run({input});
  const auto cut = turnkey::net::Run({input.first(split), input.subspan(split)});
  turnkey::net::Check(whole == cut);
  return 0;
}
