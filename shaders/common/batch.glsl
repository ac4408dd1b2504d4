// The batch the stream's begin() uploads (engine/backend/vulkan/vk_stream.cpp, BatchLayout), as uint
// words at binding BATCH_BINDING: tokens [n], pos [n], tbl [n] (offset of each token's block table in
// the same array), out_rows [n_out], then the block tables.
layout(binding = BATCH_BINDING) readonly buffer Batch { uint batch[]; };
