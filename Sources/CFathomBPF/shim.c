#include "CFathomBPF.h"
