#pragma once
// The dashboard served at / on the admin port: index.html and dashboard.js
// from src/server/dashboard/, compiled in (cmake/EmbedFiles.cmake). It reads
// /v1/status, /v1/sessions and /v1/metrics and styles itself with the docs
// site's sheet (/docs/style.css).

#include <span>

#include "http/embedded.h"

namespace memkv::server {

std::span<const http::EmbeddedFile> DashboardFiles();

}  // namespace memkv::server
