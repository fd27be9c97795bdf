// The documentation site embedded in the binary: every page of docs/ is in
// it, rendered; every internal link and every resource names a file of the
// site (or an anchor of the page it links to); nothing is fetched from
// outside.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "http/embedded.h"

namespace memkv::http {
namespace {

std::map<std::string, std::string_view> Site() {
  std::map<std::string, std::string_view> site;
  for (const EmbeddedFile& f : DocsSite()) site.emplace(std::string(f.path), f.body);
  return site;
}

std::set<std::string> Ids(std::string_view html) {
  std::set<std::string> ids;
  static const std::regex kId(R"re(\bid="([^"]+)")re");
  const std::string s(html);
  for (std::sregex_iterator it(s.begin(), s.end(), kId), end; it != end; ++it)
    ids.insert((*it)[1]);
  return ids;
}

TEST(DocsSite, HoldsEveryPageOfDocsRendered) {
  const auto site = Site();
  size_t pages = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MEMKV_SOURCE_DIR "/docs")) {
    if (entry.path().extension() != ".md") continue;
    const std::string html = entry.path().stem().string() + ".html";
    ASSERT_TRUE(site.contains(html)) << html << " is missing from the embedded site";
    const std::string_view body = site.at(html);
    EXPECT_NE(body.find("<h1>"), std::string_view::npos) << html << " has no rendered heading";
    EXPECT_EQ(body.find("@BODY@"), std::string_view::npos) << html;
    pages += 1;
  }
  EXPECT_GE(pages, 8u);
  EXPECT_TRUE(site.contains("index.html"));
  EXPECT_TRUE(site.contains("style.css"));
}

TEST(DocsSite, EveryLinkResolvesAndNothingComesFromOutside) {
  const auto site = Site();
  static const std::regex kRef(R"re(\b(href|src)="([^"]*)")re");
  for (const auto& [path, body] : site) {
    if (!path.ends_with(".html")) continue;
    const std::string s(body);
    for (std::sregex_iterator it(s.begin(), s.end(), kRef), end; it != end; ++it) {
      const std::string attr = (*it)[1];
      const std::string ref = (*it)[2];
      const bool external = ref.find("://") != std::string::npos || ref.starts_with("//");
      if (attr == "src" || ref.ends_with(".css") || ref.ends_with(".js")) {
        EXPECT_FALSE(external) << path << " loads " << ref << " from outside the binary";
      }
      if (external || ref.starts_with("mailto:")) continue;  // a link out, not fetched
      std::string file = ref.substr(0, ref.find('#'));
      const std::string anchor = ref.find('#') == std::string::npos ? "" : ref.substr(ref.find('#') + 1);
      if (file.empty()) file = path;  // "#part": this page
      ASSERT_TRUE(site.contains(file)) << path << " links to " << ref << ", which is not in the site";
      if (!anchor.empty() && file.ends_with(".html")) {
        EXPECT_TRUE(Ids(site.at(file)).contains(anchor))
            << path << " links to " << ref << ": no such anchor";
      }
    }
  }
}

}  // namespace
}  // namespace memkv::http
