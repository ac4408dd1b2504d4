// The ggml type traits table: every id the reference lists, sizes from the block structs.
#include <gtest/gtest.h>

#include "gguf/ggml_types.h"

using namespace tessera;

TEST(TypeTraits, KnownIdsAndSizes) {
  struct Expect { uint32_t id; const char* name; uint32_t bs, ts; };
  const Expect expect[] = {{0, "f32", 1, 4},       {1, "f16", 1, 2},      {2, "q4_0", 32, 18},
                           {3, "q4_1", 32, 20},    {6, "q5_0", 32, 22},   {7, "q5_1", 32, 24},
                           {8, "q8_0", 32, 34},    {12, "q4_K", 256, 144}, {13, "q5_K", 256, 176},
                           {14, "q6_K", 256, 210}, {20, "iq4_nl", 32, 18}, {23, "iq4_xs", 256, 136},
                           {30, "bf16", 1, 2},     {39, "mxfp4", 32, 17}};
  for (const auto& e : expect) {
    const TypeTraits* t = find_type_traits(e.id);
    ASSERT_NE(t, nullptr) << e.id;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->block_size, e.bs) << e.name;
    EXPECT_EQ(t->type_size, e.ts) << e.name;
  }
}

TEST(TypeTraits, RetiredAndUnknownIdsAreRejected) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u})
    EXPECT_EQ(find_type_traits(id), nullptr) << id;
  EXPECT_EQ(type_from_name("Q4_k"), GgmlType::Q4_K);
  EXPECT_FALSE(type_from_name("q4_2").has_value());
}
