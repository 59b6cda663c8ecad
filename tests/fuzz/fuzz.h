/* Shared by the libFuzzer harnesses of tests/fuzz: the input as a C string
 * or as a file (the readers of smr take paths), and a quiet stderr. */
#ifndef SMR_FUZZ_H
#define SMR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* DATA as a NUL-terminated string (free it); NULL if it holds a NUL byte,
 * which no text reader of smr can receive as part of a C string. */
char *fuzz_cstr(const uint8_t *data, size_t size);
/* DATA written to this process's scratch file, whose path is returned. */
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);
/* Once per process: time zone, hash key, stderr to /dev/null unless
 * SMR_FUZZ_VERBOSE is set. */
void fuzz_setup(void);

#endif
