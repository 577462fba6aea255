# libFuzzer targets for every parser (issue 6). Included by the top-level
# Makefile. `make fuzz` builds them into build-fuzz/; `make fuzz-run` runs
# each for FUZZ_SECONDS (default 20) and fails on any crash, leak or hang.
# Needs clang and libFuzzer (Debian: clang libclang-rt-14-dev).

FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
	-g -O1 $(FUZZ_SAN) $(PKG_CFLAGS) -Icommon -Itests/fuzz -MMD -MP
FUZZ_TARGETS := fuzz_authkeys fuzz_relay_config fuzz_hostport fuzz_control \
	fuzz_agent_config

fuzz_obj = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))
FUZZ_COMMON_OBJ := $(call fuzz_obj,$(COMMON_SRC))
FUZZ_RELAY_OBJ  := $(call fuzz_obj,$(filter-out relay/main.c,$(RELAY_SRC)))
FUZZ_AGENT_OBJ  := $(call fuzz_obj,$(filter-out agent/main.c,$(AGENT_SRC)))
FUZZ_BINS       := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-run fuzz-clean
fuzz: $(FUZZ_BINS)

fuzz-run: fuzz
	FUZZ_BUILD=$(CURDIR)/$(FUZZ_BUILD) bash tests/fuzz/run.sh

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

# Library code: instrumented for coverage, no libFuzzer main.
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# Each target links only what it parses with (relay code where needed).
$(FUZZ_BUILD)/fuzz_authkeys $(FUZZ_BUILD)/fuzz_hostport: \
    $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_COMMON_OBJ)
$(FUZZ_BUILD)/fuzz_relay_config $(FUZZ_BUILD)/fuzz_control: \
    $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_RELAY_OBJ) $(FUZZ_COMMON_OBJ)
$(FUZZ_BUILD)/fuzz_agent_config: \
    $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_AGENT_OBJ) $(FUZZ_COMMON_OBJ)
$(FUZZ_BUILD)/fuzz_relay_config $(FUZZ_BUILD)/fuzz_control: \
    FUZZ_INC := -Irelay
$(FUZZ_BUILD)/fuzz_agent_config: FUZZ_INC := -Iagent
$(FUZZ_BINS):
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(PKG_LIBS) $(RELAY_LIBS)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
