#include "CFathomBPF.h"

/* C23 #embed: SwiftPM rebuilds this file when the object changes. */
const unsigned char fathom_capture_bpf_object[] = {
#embed "../../bpf/capture.bpf.o"
};
const size_t fathom_capture_bpf_object_size = sizeof(fathom_capture_bpf_object);
