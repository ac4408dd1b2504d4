// Anchors the core library (error.h is header-only today).
#include "engine/core/error.h"
