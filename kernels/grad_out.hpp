// Where a backward kernel puts a gradient: an input's gradient array, which another consumer of
// that input may have filled already.
#pragma once

namespace xgrad::kernels {

/// A gradient output: written, or added to when `add` is set (the array already holds another
/// consumer's part). Null data: not wanted. A kernel that puts its result straight into the
/// gradient, each thread the part it computed, leaves nothing to copy or add afterwards (on one
/// core, over lines the other core wrote: autograd's BackwardContext::grad_target gives the array
/// and whether to add).
struct GradOut {
  float* data = nullptr;
  bool add = false;
};

}  // namespace xgrad::kernels
