// Writes the seed corpus for fuzz_gguf: a small valid copy of every golden model (all metadata,
// arrays cut to 16 items, one small tensor per name/type) and the every-value-type file (versions 3
// and 2). Usage: gguf_fuzz_seeds GOLDEN_DIR OUT_DIR -> OUT_DIR/seeds (seeds), OUT_DIR/corpus (empty).
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tests/gguf/gguf_test_files.h"

namespace fs = std::filesystem;
using namespace tessera::gguf;

static void save(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) tessera::throw_error("{}: cannot write", path.string());
  std::fclose(f);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    fs::path out = argv[2];
    fs::remove_all(out / "corpus");  // every run starts from the seeds alone
    fs::remove_all(out / "seeds");
    fs::create_directories(out / "corpus");
    fs::create_directories(out / "seeds");
    size_t n = 0;
    for (const std::string& path : testing::golden_models(argv[1])) {
      save(out / "seeds" / ("mini-" + fs::path(path).filename().string()), testing::mini_writer(File::open(path)).to_bytes());
      ++n;
    }
    std::vector<uint8_t> all = testing::all_types_writer(true).to_bytes();
    save(out / "seeds" / "all-types.gguf", all);
    all[4] = 2;
    save(out / "seeds" / "all-types-v2.gguf", all);
    std::printf("wrote %zu seeds to %s\n", n + 2, (out / "seeds").c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
