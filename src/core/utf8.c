#include "core/utf8.h"

#include <string.h>

/* The state packs what the next byte may be, so that a bad byte is refused the moment it
 * arrives (E0 80 fails on the 80, not one byte later): bits 0-7 hold how many continuation
 * bytes are still due, bits 8-15 and 16-23 the lowest and highest value allowed for the next
 * one. RFC 3629 only narrows the range of the byte right after the lead byte; that is where
 * overlongs, surrogates and values above U+10FFFF show. */
#define UTF8_FAILED 0xFFFFFFFFu
#define UTF8_HIGH_BITS 0x8080808080808080ull

static uint32_t expect(uint32_t remaining, uint32_t lowest, uint32_t highest)
{
    return remaining | (lowest << 8) | (highest << 16);
}

static uint32_t state_after_lead_byte(uint8_t byte)
{
    if (byte < 0xC2) /* continuation bytes, and C0/C1 which only start overlong forms */
        return UTF8_FAILED;
    if (byte < 0xE0)
        return expect(1, 0x80, 0xBF);
    if (byte == 0xE0) /* below A0 would be an overlong 3-byte form */
        return expect(2, 0xA0, 0xBF);
    if (byte == 0xED) /* A0 and above would encode the surrogates D800-DFFF */
        return expect(2, 0x80, 0x9F);
    if (byte < 0xF0)
        return expect(2, 0x80, 0xBF);
    if (byte == 0xF0) /* below 90 would be an overlong 4-byte form */
        return expect(3, 0x90, 0xBF);
    if (byte < 0xF4)
        return expect(3, 0x80, 0xBF);
    if (byte == 0xF4) /* 90 and above would exceed U+10FFFF */
        return expect(3, 0x80, 0x8F);
    return UTF8_FAILED; /* F5-FF never occur */
}

static uint32_t state_after_continuation(uint32_t state, uint8_t byte)
{
    uint32_t lowest = (state >> 8) & 0xFF;
    uint32_t highest = (state >> 16) & 0xFF;
    if (byte < lowest || byte > highest)
        return UTF8_FAILED;
    uint32_t remaining = (state & 0xFF) - 1;
    return remaining == 0 ? 0 : expect(remaining, 0x80, 0xBF);
}

/* Length of the run of ASCII bytes at the start of data, tested sixteen then eight bytes at a
 * time because most text on the wire (JSON) is ASCII. memcpy keeps unaligned loads defined. */
static size_t ascii_prefix_length(const uint8_t *data, size_t length)
{
    size_t index = 0;
    while (index + 16 <= length) {
        uint64_t first, second;
        memcpy(&first, data + index, sizeof(first));
        memcpy(&second, data + index + 8, sizeof(second));
        if ((first | second) & UTF8_HIGH_BITS)
            break;
        index += 16;
    }
    while (index + 8 <= length) {
        uint64_t word;
        memcpy(&word, data + index, sizeof(word));
        if (word & UTF8_HIGH_BITS)
            break;
        index += 8;
    }
    while (index < length && data[index] < 0x80)
        index++;
    return index;
}

void sioc__utf8_validator_init(sioc__utf8_validator_t *validator)
{
    validator->state = 0;
    validator->codepoint = 0;
}

int sioc__utf8_validator_feed(sioc__utf8_validator_t *validator, const uint8_t *data, size_t length)
{
    uint32_t state = validator->state;
    uint32_t codepoint = validator->codepoint;
    size_t index = 0;
    while (state != UTF8_FAILED && index < length) {
        if (state == 0) {
            index += ascii_prefix_length(data + index, length - index);
            if (index == length)
                break;
            uint8_t lead = data[index++];
            state = state_after_lead_byte(lead);
            if (state != UTF8_FAILED) /* a lead byte carries 6 - remaining payload bits */
                codepoint = lead & (0x3Fu >> (state & 0xFF));
        } else {
            uint8_t byte = data[index++];
            state = state_after_continuation(state, byte);
            codepoint = (codepoint << 6) | (byte & 0x3Fu);
        }
    }
    validator->state = state;
    validator->codepoint = codepoint;
    return state == UTF8_FAILED ? -1 : 0;
}

int sioc__utf8_validator_is_complete(const sioc__utf8_validator_t *validator)
{
    return validator->state == 0;
}

int sioc__utf8_is_valid(const uint8_t *data, size_t length)
{
    sioc__utf8_validator_t validator;
    sioc__utf8_validator_init(&validator);
    return sioc__utf8_validator_feed(&validator, data, length) == 0 &&
           sioc__utf8_validator_is_complete(&validator);
}
