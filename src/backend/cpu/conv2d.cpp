// conv2d on oneDNN: NHWC activations; the OIHW weight is reordered once into the
// blocked layout the primitive chooses ("any") and cached per weight tensor.
#include <string>

#include "backend/cpu/kernels.h"
#include "backend/cpu/onednn_utils.h"

namespace darkroom::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

}  // namespace

void conv2d(const Conv2dArgs& a) {
  const int64_t n = a.x.dim(0), h = a.x.dim(1), w = a.x.dim(2), c = a.x.dim(3);
  const int64_t o = a.weight.dim(0), kh = a.weight.dim(2), kw = a.weight.dim(3);
  const int64_t ho = a.out.dim(1), wo = a.out.dim(2);
  if (n * ho * wo * o == 0) return;
  const bool has_bias = a.bias.defined();
  static onednn::LruCache<std::shared_ptr<onednn::WeightedPlan>> plans(512);
  std::string key =
      onednn::dims_key({n, h, w, c, o, kh, kw, a.stride_h, a.stride_w, a.pad_h, a.pad_w}) +
      std::string(dtype_name(a.x.dtype())) + (has_bias ? "b" : "");
  auto plan = plans.get_or_create(key, [&] {
    const auto t = onednn::to_dnnl(a.x.dtype());
    auto p = std::make_shared<onednn::WeightedPlan>();
    p->src = memory::desc({n, c, h, w}, t, tag::nhwc);
    p->dst = memory::desc({n, o, ho, wo}, t, tag::nhwc);
    p->weights_plain = memory::desc({o, c, kh, kw}, t, tag::oihw);
    if (has_bias) p->bias = memory::desc({o}, t, tag::a);
    const memory::desc w_any({o, c, kh, kw}, t, tag::any);
    const memory::dims strides{a.stride_h, a.stride_w}, pad{a.pad_h, a.pad_w};
    auto d = has_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, p->src,
                                                        w_any, p->bias, p->dst, strides, pad, pad)
                      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, p->src,
                                                        w_any, p->dst, strides, pad, pad);
    DR_DNNL_CHECK({
      dnnl::convolution_forward::primitive_desc pd(d, onednn::engine());
      p->weights_wanted = pd.weights_desc();
      p->prim = dnnl::convolution_forward(pd);
    });
    return p;
  });
  onednn::run_weighted(*plan, a.x, a.weight, a.bias, a.out);
}

}  // namespace darkroom::cpu
