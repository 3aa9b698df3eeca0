#include "config.h"

#include "ses_reply.h"
