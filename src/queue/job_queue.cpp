#include "queue/job_queue.h"
