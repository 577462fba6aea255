/* Key helpers: fingerprints as ssh-keygen prints them, private key checks. */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common.h"

/* "SHA256:<base64 without padding>", exactly like ssh-keygen -l. */
char *
key_fingerprint(ssh_key key)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp, *ret;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) != 0)
		return xstrdup("SHA256:?");
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	if (fp == NULL)
		return xstrdup("SHA256:?");
	ret = xstrdup(fp);
	ssh_string_free_char(fp);
	return ret;
}

/* Refuse a private key readable by group or others, as ssh does. */
int
key_file_private_ok(const char *path, char *err, size_t len)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, len, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, len, "%s: permissions %04o are too open "
		    "(private key must not be accessible by group or others; "
		    "chmod 600 it)", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* Read a big-endian u32 length-prefixed field of an SSH wire blob. */
static int
keys_field(const unsigned char **p, const unsigned char *end,
    const unsigned char **f, size_t *flen)
{
	uint32_t n;

	if (end - *p < 4)
		return -1;
	n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 |
	    (uint32_t)(*p)[2] << 8 | (*p)[3];
	*p += 4;
	if ((size_t)(end - *p) < n)
		return -1;
	*f = *p;
	*flen = n;
	*p += n;
	return 0;
}

/*
 * "256 SHA256:... COMMENT (ED25519)", the line ssh-keygen -l prints: bits
 * from the type (RSA: from the modulus in the key blob).
 */
char *
key_fingerprint_line(ssh_key key, const char *comment)
{
	enum ssh_keytypes_e t = ssh_key_type(key);
	const char *name = ssh_key_type_to_char(t), *label = "?";
	unsigned char blob[2048];
	const unsigned char *p, *end, *f;
	char *b64 = NULL, *fp, *ret;
	size_t blen, flen;
	int bits = 0;

	switch (t) {
	case SSH_KEYTYPE_ED25519:
		bits = 256;
		label = "ED25519";
		break;
	case SSH_KEYTYPE_ECDSA_P256:
		bits = 256;
		label = "ECDSA";
		break;
	case SSH_KEYTYPE_ECDSA_P384:
		bits = 384;
		label = "ECDSA";
		break;
	case SSH_KEYTYPE_ECDSA_P521:
		bits = 521;
		label = "ECDSA";
		break;
	case SSH_KEYTYPE_RSA:
		label = "RSA";
		if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK ||
		    sodium_base642bin(blob, sizeof blob, b64, strlen(b64), NULL,
		    &blen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
			break;
		p = blob;
		end = blob + blen;
		/* string "ssh-rsa", mpint e, mpint n */
		if (keys_field(&p, end, &f, &flen) == 0 &&
		    keys_field(&p, end, &f, &flen) == 0 &&
		    keys_field(&p, end, &f, &flen) == 0) {
			while (flen > 0 && *f == 0) {
				f++;
				flen--;
			}
			if (flen > 0) {
				bits = (int)(flen - 1) * 8;
				for (unsigned int c = *f; c; c >>= 1)
					bits++;
			}
		}
		break;
	default:
		label = name ? name : "?";
		break;
	}
	free(b64);
	fp = key_fingerprint(key);
	xasprintf(&ret, "%d %s %s (%s)", bits, fp, comment, label);
	free(fp);
	return ret;
}
