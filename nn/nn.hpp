// nn: modules, their functional forms, initialisers and checkpoints.
#pragma once

#include <xgrad/nn/container.hpp>
#include <xgrad/nn/module.hpp>
