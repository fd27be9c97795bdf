#pragma once
// Files compiled into the binary (the documentation site, the dashboard):
// each with the URL path it is served at, relative to its mount point, its
// content type and its bytes. The tables are generated at build time
// (cmake/EmbedFiles.cmake) and live for the whole program.

#include <span>
#include <string_view>

namespace memkv::http {

struct EmbeddedFile {
  std::string_view path;          // "index.html", "style.css"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// The documentation site: docs/*.md rendered by cmark, and its style sheet.
std::span<const EmbeddedFile> DocsSite();

}  // namespace memkv::http
