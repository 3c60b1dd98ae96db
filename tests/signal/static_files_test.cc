#include "signal/static_files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace turnkey::signal {
namespace {

namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "tk-static-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& relative, const std::string& contents) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
  }

  fs::path root_;
};

TEST_F(StaticFilesTest, ServesTheTableWithItsTypes) {
  Write("index.html", "<!doctype html>");
  Write("app.js", "import './turnkey.js';");
  Write("turnkey.js", "export {};");
  Write("style.css", "body{}");
  Write("node_modules/socket.io-client/dist/socket.io.min.js", "var io;");
  Write("node_modules/socket.io-client/dist/socket.io.min.js.map", "{}");
  Write("secret.txt", "not served");
  auto files = StaticFiles::Load(root_.string());
  ASSERT_TRUE(files.has_value()) << files.error().message;

  for (const char* path : {"/", "/index.html"}) {
    net::HttpResponse page = files->Respond(path);
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.body, "<!doctype html>");
    EXPECT_EQ(page.headers.Get("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.headers.Get("Cache-Control"), "no-cache");
    EXPECT_EQ(page.headers.Get("X-Content-Type-Options"), "nosniff");
    // No framing of the login form, no script but the page's own files.
    EXPECT_EQ(page.headers.Get("X-Frame-Options"), "DENY");
    EXPECT_EQ(page.headers.Get("Referrer-Policy"), "no-referrer");
    const std::string csp(page.headers.Get("Content-Security-Policy").value_or(""));
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
  }
  EXPECT_EQ(files->Respond("/app.js").headers.Get("Content-Type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(files->Respond("/socket.io.min.js").body, "var io;");
  EXPECT_EQ(files->Respond("/socket.io.min.js").headers.Get("Content-Type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(files->Respond("/socket.io.min.js.map").headers.Get("Content-Type"),
            "application/json");
  EXPECT_EQ(files->Respond("/style.css").headers.Get("Content-Type"), "text/css; charset=utf-8");

  // Only the table: nothing else under the root, however it is named.
  for (const char* path : {"/secret.txt", "/node_modules/socket.io-client/dist/socket.io.min.js",
                           "/../secret.txt", "/turnkey.d.ts", ""}) {
    EXPECT_EQ(files->Respond(path).status, 404) << path;
    EXPECT_FALSE(files->Has(path)) << path;
  }
  EXPECT_EQ(files->missing(), (std::vector<std::string>{"/turnkey.d.ts", "/socket.io.esm.min.js",
                                                        "/socket.io.esm.min.js.map"}));
  EXPECT_EQ(files->served().front(), "/");
}

TEST_F(StaticFilesTest, ARevalidationWithTheFilesEtagGets304) {
  Write("app.js", "one");
  auto files = StaticFiles::Load(root_.string());
  ASSERT_TRUE(files.has_value()) << files.error().message;
  const net::HttpResponse first = files->Respond("/app.js");
  const std::string etag(first.headers.Get("ETag").value_or(""));
  ASSERT_EQ(etag.size(), 34u) << etag;
  const auto revalidate = [](const StaticFiles& from, std::vector<std::string> values) {
    net::HttpHeaders headers;
    for (std::string& value : values) {
      headers.Add("If-None-Match", std::move(value));
    }
    return from.Respond("/app.js", headers);
  };
  for (const std::vector<std::string>& values :
       std::vector<std::vector<std::string>>{{etag},
                                             {"W/" + etag},
                                             {"\"other\", " + etag + " "},
                                             {"\"other\"", etag},  // two fields
                                             {"*"}}) {
    const net::HttpResponse again = revalidate(*files, values);
    EXPECT_EQ(again.status, 304) << values[0];
    EXPECT_EQ(again.body, "") << values[0];
    EXPECT_EQ(again.headers.Get("ETag"), etag) << values[0];
  }
  EXPECT_EQ(revalidate(*files, {"\"other\""}).status, 200);
  // A new deployment has a new ETag.
  Write("app.js", "two");
  auto reloaded = StaticFiles::Load(root_.string());
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_NE(reloaded->Respond("/app.js").headers.Get("ETag"), etag);
  EXPECT_EQ(revalidate(*reloaded, {etag}).status, 200);
}

TEST_F(StaticFilesTest, ARootThatIsNoDirectoryFails) {
  EXPECT_FALSE(StaticFiles::Load((root_ / "missing").string()).has_value());
  Write("file", "x");
  EXPECT_FALSE(StaticFiles::Load((root_ / "file").string()).has_value());
}

TEST_F(StaticFilesTest, AnOversizedFileFails) {
  Write("app.js", std::string(2048, 'x'));
  EXPECT_FALSE(StaticFiles::Load(root_.string(), 1024).has_value());
}

TEST_F(StaticFilesTest, TheSourceTreeWebDirectoryHasThePage) {
  auto files = StaticFiles::Load(std::string(TURNKEY_TEST_SOURCE_DIR) + "/web");
  ASSERT_TRUE(files.has_value()) << files.error().message;
  for (const char* path : {"/", "/app.js", "/turnkey.js", "/turnkey.d.ts", "/style.css"}) {
    EXPECT_TRUE(files->Has(path)) << path;
  }
}

}  // namespace
}  // namespace turnkey::signal
