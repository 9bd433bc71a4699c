package onec

import ()
