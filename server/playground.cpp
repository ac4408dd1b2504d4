// GET /playground: the CodeMirror playground (clients/codemirror), its files embedded at build time
// from the table server/embed_assets.cmake writes (one .incbin per file). Without them (setup did
// not run the npm build) every /playground path answers 404 saying how to build them.
#include <string_view>

#include "server/routes.h"

namespace tessera::server {
namespace {

struct Asset {
  std::string_view url, mime, etag;
  const char* begin;
  const char* end;
};

// Each file becomes the bytes between two symbols in .rodata.
#define TESSERA_ASSET(id, url, file, mime, sha)                                                 \
  extern "C" const char tessera_pg_##id##_begin[];                                              \
  extern "C" const char tessera_pg_##id##_end[];                                                \
  __asm__(".pushsection .rodata.tessera_playground,\"a\",@progbits\n"                            \
          ".balign 16\n.hidden tessera_pg_" #id "_begin\n.globl tessera_pg_" #id "_begin\n"      \
          "tessera_pg_" #id "_begin:\n.incbin \"" file "\"\n"                                    \
          ".hidden tessera_pg_" #id "_end\n.globl tessera_pg_" #id "_end\ntessera_pg_" #id "_end:\n" \
          ".byte 0\n.popsection\n");
#include "playground_assets.inc"
#undef TESSERA_ASSET

#define TESSERA_ASSET(id, url, file, mime, sha) Asset{url, mime, "\"" sha "\"", tessera_pg_##id##_begin, tessera_pg_##id##_end},
const Asset kAssets[] = {
#include "playground_assets.inc"
    Asset{{}, {}, {}, nullptr, nullptr},  // keeps the array non-empty without assets
};
#undef TESSERA_ASSET

const Asset* find_asset(std::string_view path) {
  if (path == "/playground" || path == "/playground/") path = "/playground/index.html";
  for (const Asset& a : kAssets)
    if (a.begin && a.url == path) return &a;
  return nullptr;
}

void serve_asset(const httplib::Request& req, httplib::Response& res) {
  const Asset* a = find_asset(req.path);
  if (!a) {
    const bool built = kAssets[0].begin != nullptr;
    res.status = 404;
    res.set_content(built ? "404: no such file in the playground: " + req.path + "\n"
                          : std::string("404: the playground was not built into this binary. Build its files with\n"
                                        "  (cd clients/codemirror && npm ci && npm run build)\n"
                                        "(scripts/setup.sh does this), then rebuild tessera (ninja -C build tessera).\n"),
                    "text/plain; charset=utf-8");
    return;
  }
  res.set_header("ETag", std::string(a->etag));
  res.set_header("Cache-Control", "no-cache");
  if (req.get_header_value("If-None-Match") == a->etag) {
    res.status = 304;
    return;
  }
  res.set_content(a->begin, static_cast<size_t>(a->end - a->begin), std::string(a->mime));
}

}  // namespace

void register_playground_routes(httplib::Server& svr, ServerState&) {
  svr.Get("/playground", guarded(serve_asset));
  svr.Get(R"(/playground/.*)", guarded(serve_asset));
}

}  // namespace tessera::server
