// Activations quantized into shared memory by the workgroup that uses them, value for value as
// quantize.comp makes them (so fused shaders need no quantize dispatch): load_act(off, n) leaves
// xs[0..n) = x[off..off+n) as the weight type's activations (n <= kMaxIn, whole blocks for Q8_*);
// act_load + act_finish are its two halves, for a shader that transforms the row in between.
// The including shader declares `float x[]`, a workgroup of 64 and at most one ACT_<type>
// (ACT_Q8_0 also for Q8_1: the block sums are not needed here; none: f32).
const uint kMaxIn = 4096;  // 16 KiB (+ 5 KiB for the scales: lavapipe offers 32, gfx1151 64)
shared float xs[kMaxIn];
#if defined(ACT_Q8_K)
const uint kActBlock = 256;
#else
const uint kActBlock = 32;
#endif
#if defined(ACT_Q8_0) || defined(ACT_Q8_K)
shared float chunk_max[kMaxIn / 8u];
shared uint chunk_arg[kMaxIn / 8u];
shared float block_a[kMaxIn / kActBlock], block_b[kMaxIn / kActBlock];
#endif

// xs[0..n) = x[off..off+n), as they are (f32)
void act_load(uint off, uint n) {
  barrier();  // earlier readers of xs are done
  for (uint i = gl_LocalInvocationID.x; i < n; i += 64u) xs[i] = x[off + i];
  barrier();
}

// xs[0..n) as the weight type's activations
void act_finish(uint n) {
  const uint tid = gl_LocalInvocationID.x;
  for (uint i = tid; i < n; i += 64u) {
    const float v = xs[i];
#if defined(ACT_F16)
    xs[i] = unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x;
#elif defined(ACT_BF16)
    const uint b = floatBitsToUint(v);
    xs[i] = uintBitsToFloat(((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) << 16);
#endif
  }
  barrier();
#if defined(ACT_Q8_0) || defined(ACT_Q8_K)
  // each block's largest magnitude (its first index on ties) in two steps that keep every invocation
  // busy: the largest of each chunk of 8 values, then of each block's chunks, in order
  for (uint c = tid; c * 8u < n; c += 64u) {
    float am = 0.0;
    uint arg = 0u;
    for (uint j = 0u; j < 8u; ++j)
      if (abs(xs[c * 8u + j]) > am) {
        am = abs(xs[c * 8u + j]);
        arg = c * 8u + j;
      }
    chunk_max[c] = am;
    chunk_arg[c] = arg;
  }
  barrier();
  for (uint b = tid; b * kActBlock < n; b += 64u) {
    float am = 0.0;
    uint arg = b * kActBlock;
    for (uint c = b * (kActBlock / 8u); c < (b + 1u) * (kActBlock / 8u); ++c)
      if (chunk_max[c] > am) {
        am = chunk_max[c];
        arg = chunk_arg[c];
      }
#if defined(ACT_Q8_0)
    block_a[b] = unpackHalf2x16(packHalf2x16(vec2(am / 127.0, 0.0))).x;  // d
    block_b[b] = am != 0.0 ? 127.0 / am : 0.0;                           // 1/d, as the reference rounds it
#else
    block_a[b] = am != 0.0 ? -127.0 / xs[arg] : 0.0;  // iscale (the signed largest value)
#endif
  }
  barrier();
  for (uint i = tid; i < n; i += 64u) {
    const uint b = i / kActBlock;
#if defined(ACT_Q8_0)
    xs[i] = roundEven(xs[i] * block_b[b]) * block_a[b];
#else
    xs[i] = block_a[b] != 0.0 ? min(roundEven(block_a[b] * xs[i]), 127.0) * (1.0 / block_a[b]) : 0.0;
#endif
  }
  barrier();
#endif
}

void load_act(uint off, uint n) {
  act_load(off, n);
  act_finish(n);
}
