// Anchors the core library (error.h is header-only today).
#include "core/error.h"
