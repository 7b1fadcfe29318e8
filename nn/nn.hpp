// nn: modules, their functional forms, initialisers and checkpoints.
#pragma once

#include <xgrad/nn/checkpoint.hpp>
#include <xgrad/nn/container.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/embedding.hpp>
#include <xgrad/nn/feed_forward.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/init.hpp>
#include <xgrad/nn/kv_cache.hpp>
#include <xgrad/nn/quantized.hpp>
#include <xgrad/nn/layer_norm.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/multihead_attention.hpp>
#include <xgrad/nn/positional.hpp>
#include <xgrad/nn/safetensors.hpp>
