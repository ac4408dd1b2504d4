// Dequantization of one weight value, per GGUF block type (the byte layouts of gguf/quant_blocks.h,
// the scalar math of gguf/codecs.cpp). The including shader declares `uint w_words[]` (the raw bytes
// of the tensor as 32-bit words, little-endian) and defines one TYPE_<type>.
// dequant(blk, j): value j of the block starting at byte offset blk. A shader reading two tensors
// defines W_WORD(i) to pick the word from the one it is on (shaders/moe.comp). A shader with a second
// weight type includes this file again with that TYPE_<type> and dequant, QK, QBYTES (and scale_min_k4,
// kIq4nl) #defined to other names (shaders/gemv.comp QKV).
#if !defined(DEQUANT_BYTES)
#define DEQUANT_BYTES
#if !defined(W_WORD)
#define W_WORD(i) w_words[i]
#endif
uint wbyte(uint off) { return (W_WORD(off >> 2) >> ((off & 3u) * 8u)) & 0xffu; }
float whalf(uint off) { return unpackHalf2x16(wbyte(off) | (wbyte(off + 1u) << 8)).x; }
int wi8(uint off) { return int(wbyte(off) << 24) >> 24; }
#endif

#if defined(TYPE_F32)
const uint QK = 1, QBYTES = 4;
float dequant(uint blk, uint j) { return uintBitsToFloat(W_WORD(blk >> 2)); }
#elif defined(TYPE_F16)
const uint QK = 1, QBYTES = 2;
float dequant(uint blk, uint j) { return whalf(blk); }
#elif defined(TYPE_BF16)
const uint QK = 1, QBYTES = 2;
float dequant(uint blk, uint j) { return uintBitsToFloat((wbyte(blk) | (wbyte(blk + 1u) << 8)) << 16); }
#elif defined(TYPE_Q8_0)
const uint QK = 32, QBYTES = 34;  // d, qs[32]
float dequant(uint blk, uint j) { return whalf(blk) * float(wi8(blk + 2u + j)); }
#elif defined(TYPE_Q4_0)
const uint QK = 32, QBYTES = 18;  // d, qs[16]: low nibbles are values 0..15, high ones 16..31
float dequant(uint blk, uint j) {
  const uint q = wbyte(blk + 2u + (j & 15u));
  return whalf(blk) * float(int(j < 16u ? q & 15u : q >> 4) - 8);
}
#elif defined(TYPE_Q4_1)
const uint QK = 32, QBYTES = 20;  // d, m, qs[16]
float dequant(uint blk, uint j) {
  const uint q = wbyte(blk + 4u + (j & 15u));
  return float(j < 16u ? q & 15u : q >> 4) * whalf(blk) + whalf(blk + 2u);
}
#elif defined(TYPE_Q5_1)
const uint QK = 32, QBYTES = 24;  // d, m, qh[4], qs[16]
float dequant(uint blk, uint j) {
  const uint q = wbyte(blk + 8u + (j & 15u));
  const uint h = (wbyte(blk + 4u + (j >> 3)) >> (j & 7u)) & 1u;
  return float((j < 16u ? q & 15u : q >> 4) | (h << 4)) * whalf(blk) + whalf(blk + 2u);
}
#elif defined(TYPE_Q5_0)
const uint QK = 32, QBYTES = 22;  // d, qh[4] (bit j: 5th bit of value j), qs[16]
float dequant(uint blk, uint j) {
  const uint q = wbyte(blk + 6u + (j & 15u));
  const uint h = (wbyte(blk + 2u + (j >> 3)) >> (j & 7u)) & 1u;
  return whalf(blk) * float(int((j < 16u ? q & 15u : q >> 4) | (h << 4)) - 16);
}
#elif defined(TYPE_IQ4_NL)
const uint QK = 32, QBYTES = 18;  // d, qs[16]: 4-bit indices into a non-linear table
const float kIq4nl[16] = float[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
float dequant(uint blk, uint j) {
  const uint q = wbyte(blk + 2u + (j & 15u));
  return whalf(blk) * kIq4nl[j < 16u ? q & 15u : q >> 4];
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#if defined(TYPE_Q4_K)
const uint QK = 256, QBYTES = 144;  // d, dmin, scales[12], qs[128]
#else
const uint QK = 256, QBYTES = 176;  // d, dmin, scales[12], qh[32], qs[128]
#endif
// 6-bit scale and min of sub-block s (0..7) packed in scales[12]
void scale_min_k4(uint blk, uint s, out float sc, out float m) {
  const uint sb = blk + 4u;
  if (s < 4u) {
    sc = float(wbyte(sb + s) & 63u);
    m = float(wbyte(sb + s + 4u) & 63u);
  } else {
    sc = float((wbyte(sb + s + 4u) & 15u) | ((wbyte(sb + s - 4u) >> 6) << 4));
    m = float((wbyte(sb + s + 4u) >> 4) | ((wbyte(sb + s) >> 6) << 4));
  }
}
float dequant(uint blk, uint j) {
  const uint g = j >> 6, hi = (j >> 5) & 1u, l = j & 31u, s = 2u * g + hi;
  float sc, m;
  scale_min_k4(blk, s, sc, m);
#if defined(TYPE_Q4_K)
  const uint q = wbyte(blk + 16u + 32u * g + l);
  const uint v = hi == 1u ? q >> 4 : q & 15u;
#else
  const uint q = wbyte(blk + 48u + 32u * g + l);
  const uint v = (hi == 1u ? q >> 4 : q & 15u) | (((wbyte(blk + 16u + l) >> s) & 1u) << 4);
#endif
  return whalf(blk) * sc * float(v) - whalf(blk + 2u) * m;
}
#elif defined(TYPE_Q6_K)
const uint QK = 256, QBYTES = 210;  // ql[128], qh[64], scales[16] (int8), d
float dequant(uint blk, uint j) {
  const uint n = j >> 7, k = (j >> 5) & 3u, l = j & 31u;
  const uint ql = wbyte(blk + 64u * n + l + 32u * (k & 1u));
  const uint h = (wbyte(blk + 128u + 32u * n + l) >> (2u * k)) & 3u;
  const int q = int((k < 2u ? ql & 15u : ql >> 4) | (h << 4)) - 32;
  return whalf(blk + 208u) * float(wi8(blk + 192u + 8u * n + l / 16u + 2u * k)) * float(q);
}
#else
#error "define one TYPE_<type>"
#endif
