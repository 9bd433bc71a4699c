package onec
