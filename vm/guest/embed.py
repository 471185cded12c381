#!/usr/bin/env python3
"""Writes the KVM guest's flat image as a C array (embed.py <guest.bin> <out.c>)."""
import sys

data = open(sys.argv[1], "rb").read()
lines = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
with open(sys.argv[2], "w") as out:
    out.write("/* The KVM guest's image, generated from vm/guest/guest.c by embed.py. */\n")
    out.write('#include "vm/guest/guest.h"\n\n')
    out.write("const uint8_t vm_kvm_guest_image[] = {\n")
    out.writelines(f"\t{line},\n" for line in lines)
    out.write("};\n")
    out.write(f"const size_t vm_kvm_guest_image_size = {len(data)};\n")
