// The `tessera` subcommands. Each takes argv with argv[0] = the subcommand name and returns an exit code.
#pragma once

namespace tessera::cli {

int cmd_gguf(int argc, char** argv);      // tools/cli/cmd_gguf.cpp: gguf inspect
int cmd_tokenize(int argc, char** argv);  // tools/cli/cmd_tokenize.cpp
int cmd_run(int argc, char** argv);       // tools/cli/cmd_run.cpp: generate text
int cmd_logits(int argc, char** argv);    // tools/cli/cmd_logits.cpp: dump logits for verification
int cmd_kernels(int argc, char** argv);   // tools/cli/cmd_kernels.cpp: kernel registry listing
int cmd_bench(int argc, char** argv);     // bench/cmd_bench.cpp: llama-bench compatible
int cmd_mkmodel(int argc, char** argv);   // tools/cli/cmd_mkmodel.cpp: synthetic models
int cmd_quantize(int argc, char** argv);  // tools/cli/cmd_quantize.cpp
int cmd_devices(int argc, char** argv);   // tools/cli/cmd_devices.cpp: Vulkan devices
int cmd_serve(int argc, char** argv);     // server/cmd_serve.cpp

}  // namespace tessera::cli
