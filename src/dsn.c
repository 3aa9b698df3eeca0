#include "config.h"

#include "dsn.h"
