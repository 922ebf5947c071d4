#include "CFathomPcap.h"
