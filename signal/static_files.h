// StaticFiles: the demo page and its scripts (web/README.md, "What turnkey
// serves"), read once into memory from a web root directory and served
// from there.
//
// Only the fixed list below is ever read or served: a request path is looked
// up in that table, never joined to the root, so no request can reach any
// other file. Paths under node_modules/ are socket.io-client's browser
// builds (`npm ci` in web/ puts them there).
//
//   /, /index.html        index.html                 text/html; charset=utf-8
//   /app.js               app.js                     text/javascript; charset=utf-8
//   /turnkey.js           turnkey.js                 text/javascript; charset=utf-8
//   /turnkey.d.ts         turnkey.d.ts               text/plain; charset=utf-8
//   /style.css            style.css                  text/css; charset=utf-8
//   /socket.io.min.js     node_modules/socket.io-client/dist/socket.io.min.js
//   /socket.io.esm.min.js node_modules/socket.io-client/dist/socket.io.esm.min.js
//   /socket.io.min.js.map, /socket.io.esm.min.js.map   (application/json)
//
// Answers carry Cache-Control: no-cache (the files change with each
// deployment, and a stale app.js next to a new server is worse than a
// revalidation), an ETag made from the content, so a revalidation costs a
// 304 rather than the file, and X-Content-Type-Options: nosniff.
//
// Immutable after Load; safe to share between threads.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/http_headers.h"
#include "net/http_response.h"

namespace turnkey::signal {

class StaticFiles {
 public:
  // One file of the table.
  struct Spec {
    std::string_view url_path;  // "/app.js"
    std::string_view file;      // relative to the root
    std::string_view content_type;
  };
  // The table above, in order ("/" and "/index.html" are two entries).
  static const std::vector<Spec>& Table();

  // Reads every file of the table that exists under `root` (at most
  // max_file_bytes each). kNotFound if `root` is not a directory;
  // kInvalidArgument for a file that cannot be read or is too large.
  // Missing files are listed in missing().
  static base::Result<StaticFiles> Load(const std::string& root,
                                        size_t max_file_bytes = 16 * 1024 * 1024);

  // True if `url_path` is one of the files loaded.
  bool Has(std::string_view url_path) const;
  // 200 with the file and its ETag, 304 without a body when the request's
  // If-None-Match (RFC 9110 section 13.1.2) names that ETag, or 404 if the
  // file is not loaded.
  net::HttpResponse Respond(std::string_view url_path,
                            const net::HttpHeaders& request_headers = {}) const;

  // URL paths of the table whose files were found / not found.
  std::vector<std::string> served() const;
  const std::vector<std::string>& missing() const { return missing_; }
  const std::string& root() const { return root_; }

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // "\"<first 16 bytes of SHA-256, hex>\""
  };
  std::string root_;
  std::map<std::string, File, std::less<>> files_;  // by URL path
  std::vector<std::string> missing_;                // URL paths
};

}  // namespace turnkey::signal
