#include "workflow/executor.h"
