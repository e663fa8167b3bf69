#include "pipeline/adm.h"

#include <array>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "models/unet.h"

namespace darkroom::pipeline {

bool family_has_adm(ModelFamily family) {
  return family == ModelFamily::Sdxl || family == ModelFamily::SdxlRefiner;
}

Tensor encode_adm(ModelFamily family, const CondEntry& e, bool negative, int64_t latent_h,
                  int64_t latent_w) {
  DR_CHECK(family_has_adm(family), "sampler", family_name(family), " takes no vector input y");
  DR_CHECK(e.pooled.defined() && e.pooled.ndim() == 2 && e.pooled.dim(0) == 1, "sampler", "this ",
           family_name(family),
           " model needs the pooled text output in its conditioning (use its own CLIP)");
  const SizeCond& s = e.size;
  const double width = s.width.value_or(static_cast<double>(latent_w * 8));
  const double height = s.height.value_or(static_cast<double>(latent_h * 8));
  const double crop_w = s.crop_w.value_or(0.0), crop_h = s.crop_h.value_or(0.0);
  if (family == ModelFamily::Sdxl) {
    const std::array<float, 6> sizes = {static_cast<float>(height),
                                        static_cast<float>(width),
                                        static_cast<float>(crop_h),
                                        static_cast<float>(crop_w),
                                        static_cast<float>(s.target_height.value_or(height)),
                                        static_cast<float>(s.target_width.value_or(width))};
    return sdxl_vector_y(e.pooled, {sizes});
  }
  const double aesthetic = s.aesthetic_score.value_or(negative ? 2.5 : 6.0);
  // The refiner's five numbers through the same embedding (ldm's timestep_embedding: cos
  // half first, max period 10000, 256 wide).
  const std::vector<float> numbers = {static_cast<float>(height), static_cast<float>(width),
                                      static_cast<float>(crop_h), static_cast<float>(crop_w),
                                      static_cast<float>(aesthetic)};
  const Tensor emb = ops::timestep_embedding(Tensor::from_floats(numbers, {5}), 256,
                                             /*flip_sin_to_cos=*/true, 0.0f, 10000.0f,
                                             DType::F32);  // [5, 256]
  const Tensor p = ops::cast(ops::to_device(e.pooled, kCpu), DType::F32);
  return ops::concat({p, emb.reshape({1, 5 * 256})}, 1);  // [1, P + 1280]
}

}  // namespace darkroom::pipeline
