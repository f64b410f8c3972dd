return 0; // replaced by the mcdit command
