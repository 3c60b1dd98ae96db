#include "signal/static_files.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::signal {
namespace {

constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJs = "text/javascript; charset=utf-8";
constexpr std::string_view kCss = "text/css; charset=utf-8";
constexpr std::string_view kText = "text/plain; charset=utf-8";
constexpr std::string_view kJson = "application/json";

}  // namespace

const std::vector<StaticFiles::Spec>& StaticFiles::Table() {
  static const std::vector<Spec> table = {
      {"/", "index.html", kHtml},
      {"/index.html", "index.html", kHtml},
      {"/app.js", "app.js", kJs},
      {"/turnkey.js", "turnkey.js", kJs},
      {"/turnkey.d.ts", "turnkey.d.ts", kText},
      {"/style.css", "style.css", kCss},
      {"/socket.io.min.js", "node_modules/socket.io-client/dist/socket.io.min.js", kJs},
      {"/socket.io.min.js.map", "node_modules/socket.io-client/dist/socket.io.min.js.map", kJson},
      {"/socket.io.esm.min.js", "node_modules/socket.io-client/dist/socket.io.esm.min.js", kJs},
      {"/socket.io.esm.min.js.map", "node_modules/socket.io-client/dist/socket.io.esm.min.js.map",
       kJson},
  };
  return table;
}

base::Result<StaticFiles> StaticFiles::Load(const std::string& root, size_t max_file_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) {
    return base::NotFound("web root " + root + " is not a directory");
  }
  StaticFiles files;
  files.root_ = root;
  for (const Spec& spec : Table()) {
    const std::filesystem::path path = std::filesystem::path(root) / spec.file;
    if (!std::filesystem::is_regular_file(path, ec)) {
      files.missing_.emplace_back(spec.url_path);
      continue;
    }
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec || size > max_file_bytes) {
      return base::InvalidArgument(path.string() + ": too large or unreadable");
    }
    std::ifstream in(path, std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      return base::InvalidArgument(path.string() + ": cannot be read");
    }
    const base::Sha256Digest digest = base::Sha256(base::AsBytes(body));
    std::string etag = "\"" + base::HexEncode(base::ByteView(digest).first(16)) + "\"";
    files.files_.emplace(std::string(spec.url_path),
                         File{std::move(body), std::string(spec.content_type), std::move(etag)});
  }
  return files;
}

bool StaticFiles::Has(std::string_view url_path) const { return files_.contains(url_path); }

net::HttpResponse StaticFiles::Respond(std::string_view url_path,
                                       const net::HttpHeaders& request_headers) const {
  auto it = files_.find(url_path);
  if (it == files_.end()) {
    net::HttpResponse response = net::HttpResponse::Error(404);
    response.headers.Set("Cache-Control", "no-cache");
    return response;
  }
  // If-None-Match = "*" / #entity-tag, compared weakly (RFC 9110 sections
  // 13.1.2 and 8.8.3.2): a W/ prefix is ignored.
  const std::string_view etag = it->second.etag;
  if (request_headers.AnyListElement("If-None-Match", [etag](std::string_view tag) {
        if (tag.starts_with("W/")) {
          tag.remove_prefix(2);
        }
        return tag == "*" || tag == etag;
      })) {
    net::HttpResponse response = net::HttpResponse::Empty(304);
    response.headers.Set("ETag", it->second.etag);
    response.headers.Set("Cache-Control", "no-cache");
    return response;
  }
  net::HttpResponse response =
      net::HttpResponse::Text(200, it->second.body, it->second.content_type);
  response.headers.Set("ETag", it->second.etag);
  response.headers.Set("Cache-Control", "no-cache");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  // The demo loads only its own files and talks only to this server: no
  // inline or foreign script can run in it, and no other site may frame its
  // login form. 'self' covers ws:/wss: in CSP 3; the schemes are listed for
  // browsers that predate it.
  response.headers.Set("Content-Security-Policy",
                       "default-src 'self'; script-src 'self'; style-src 'self'; "
                       "img-src 'self' data:; connect-src 'self' ws: wss:; "
                       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  response.headers.Set("X-Frame-Options", "DENY");
  response.headers.Set("Referrer-Policy", "no-referrer");
  return response;
}

std::vector<std::string> StaticFiles::served() const {
  std::vector<std::string> paths;
  for (const Spec& spec : Table()) {
    if (files_.contains(spec.url_path)) {
      paths.emplace_back(spec.url_path);
    }
  }
  return paths;
}

}  // namespace turnkey::signal
