/*
 * curl_api.h - libcurl and libcrypto, loaded when mailshim first needs them.
 *
 * Linking libcurl would make every run pay for loading it and the thirty
 * libraries it needs (about 4 ms here), and libcrypto alone for its
 * relocations (about 0.6 ms): most of a run that only queues, lists or
 * checks a message.  So mailshim is linked with neither: the transport
 * (submit.c, the only file that includes this one) loads them with
 * dlopen(3) when it first needs them, from the paths found at configure
 * time (LIBCRYPTO_PATH and LIBCURL_PATH: the libraries mailshim was built
 * against; libcurl's own libcrypto is that one).
 *
 * Each function submit.c uses is a pointer in curl_api, with the type of
 * its declaration in the library's headers; the macros below make a call
 * of curl_easy_init() a call through curl_api.curl_easy_init (and
 * OpenSSL's own macros, OPENSSL_free or sk_TYPE_num, end in calls through
 * it too).  Nothing may call them before curl_api_load() returned 0.
 */
#ifndef MAILSHIM_CURL_API_H
#define MAILSHIM_CURL_API_H

/* plain declarations, not curl.h's type-checking macros */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CURL_API_FUNCTIONS(X)                                                  \
	X(curl_global_init)                                                    \
	X(curl_version)                                                        \
	X(curl_version_info)                                                   \
	X(curl_easy_init)                                                      \
	X(curl_easy_setopt)                                                    \
	X(curl_easy_getinfo)                                                   \
	X(curl_easy_perform)                                                   \
	X(curl_easy_send)                                                      \
	X(curl_easy_recv)                                                      \
	X(curl_easy_cleanup)                                                   \
	X(curl_easy_strerror)                                                  \
	X(curl_multi_init)                                                     \
	X(curl_multi_add_handle)                                               \
	X(curl_multi_remove_handle)                                            \
	X(curl_multi_perform)                                                  \
	X(curl_multi_poll)                                                     \
	X(curl_multi_info_read)                                                \
	X(curl_multi_strerror)                                                 \
	X(curl_multi_cleanup)                                                  \
	X(curl_share_init)                                                     \
	X(curl_share_setopt)                                                   \
	X(curl_share_cleanup)                                                  \
	X(curl_slist_append)                                                   \
	X(curl_slist_free_all)

#define CRYPTO_API_FUNCTIONS(X)                                                \
	X(OpenSSL_version)                                                     \
	X(OpenSSL_version_num)                                                 \
	X(CRYPTO_free)                                                         \
	X(OPENSSL_sk_num)                                                      \
	X(OPENSSL_sk_value)                                                    \
	X(BIO_new)                                                             \
	X(BIO_s_mem)                                                           \
	X(BIO_new_mem_buf)                                                     \
	X(BIO_free)                                                            \
	X(BIO_ctrl)                                                            \
	X(X509_NAME_print_ex)                                                  \
	X(X509_get_subject_name)                                               \
	X(X509_get_issuer_name)                                                \
	X(X509_get0_notBefore)                                                 \
	X(X509_get0_notAfter)                                                  \
	X(X509_cmp_current_time)                                               \
	X(X509_get_ext_d2i)                                                    \
	X(X509_get0_pubkey)                                                    \
	X(X509_free)                                                           \
	X(X509_check_ip_asc)                                                   \
	X(X509_check_host)                                                     \
	X(X509_verify_cert_error_string)                                       \
	X(PEM_read_bio_X509)                                                   \
	X(i2d_PUBKEY)                                                          \
	X(EVP_sha256)                                                          \
	X(EVP_Digest)                                                          \
	X(EVP_EncodeBlock)                                                     \
	X(ASN1_STRING_length)                                                  \
	X(ASN1_STRING_get0_data)                                               \
	X(ASN1_TIME_to_tm)                                                     \
	X(GENERAL_NAMES_free)

struct curl_api {
#define CURL_API_MEMBER(name) __typeof__(name) *name;
	CURL_API_FUNCTIONS(CURL_API_MEMBER)
	CRYPTO_API_FUNCTIONS(CURL_API_MEMBER)
#undef CURL_API_MEMBER
};

extern struct curl_api curl_api;

/*
 * Load libcurl and find its functions, once (later calls return what the
 * first did).  0 when they can be used; -1 otherwise, with *err set to
 * why ("cannot load libcurl from PATH: ...") when err is not NULL.  Not
 * for threads: the first call must come before any are started.
 */
int curl_api_load(char **err);

#ifndef CURL_API_DEFINE
/* curl.h wraps these in macros that only check the number of arguments */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init (*curl_api.curl_global_init)
#define curl_version (*curl_api.curl_version)
#define curl_version_info (*curl_api.curl_version_info)
#define curl_easy_init (*curl_api.curl_easy_init)
#define curl_easy_setopt (*curl_api.curl_easy_setopt)
#define curl_easy_getinfo (*curl_api.curl_easy_getinfo)
#define curl_easy_perform (*curl_api.curl_easy_perform)
#define curl_easy_send (*curl_api.curl_easy_send)
#define curl_easy_recv (*curl_api.curl_easy_recv)
#define curl_easy_cleanup (*curl_api.curl_easy_cleanup)
#define curl_easy_strerror (*curl_api.curl_easy_strerror)
#define curl_multi_init (*curl_api.curl_multi_init)
#define curl_multi_add_handle (*curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (*curl_api.curl_multi_remove_handle)
#define curl_multi_perform (*curl_api.curl_multi_perform)
#define curl_multi_poll (*curl_api.curl_multi_poll)
#define curl_multi_info_read (*curl_api.curl_multi_info_read)
#define curl_multi_strerror (*curl_api.curl_multi_strerror)
#define curl_multi_cleanup (*curl_api.curl_multi_cleanup)
#define curl_share_init (*curl_api.curl_share_init)
#define curl_share_setopt (*curl_api.curl_share_setopt)
#define curl_share_cleanup (*curl_api.curl_share_cleanup)
#define curl_slist_append (*curl_api.curl_slist_append)
#define curl_slist_free_all (*curl_api.curl_slist_free_all)
#define OpenSSL_version (*curl_api.OpenSSL_version)
#define OpenSSL_version_num (*curl_api.OpenSSL_version_num)
#define CRYPTO_free (*curl_api.CRYPTO_free)
#define OPENSSL_sk_num (*curl_api.OPENSSL_sk_num)
#define OPENSSL_sk_value (*curl_api.OPENSSL_sk_value)
#define BIO_new (*curl_api.BIO_new)
#define BIO_s_mem (*curl_api.BIO_s_mem)
#define BIO_new_mem_buf (*curl_api.BIO_new_mem_buf)
#define BIO_free (*curl_api.BIO_free)
#define BIO_ctrl (*curl_api.BIO_ctrl)
#define X509_NAME_print_ex (*curl_api.X509_NAME_print_ex)
#define X509_get_subject_name (*curl_api.X509_get_subject_name)
#define X509_get_issuer_name (*curl_api.X509_get_issuer_name)
#define X509_get0_notBefore (*curl_api.X509_get0_notBefore)
#define X509_get0_notAfter (*curl_api.X509_get0_notAfter)
#define X509_cmp_current_time (*curl_api.X509_cmp_current_time)
#define X509_get_ext_d2i (*curl_api.X509_get_ext_d2i)
#define X509_get0_pubkey (*curl_api.X509_get0_pubkey)
#define X509_free (*curl_api.X509_free)
#define X509_check_ip_asc (*curl_api.X509_check_ip_asc)
#define X509_check_host (*curl_api.X509_check_host)
#define X509_verify_cert_error_string (*curl_api.X509_verify_cert_error_string)
#define PEM_read_bio_X509 (*curl_api.PEM_read_bio_X509)
#define i2d_PUBKEY (*curl_api.i2d_PUBKEY)
#define EVP_sha256 (*curl_api.EVP_sha256)
#define EVP_Digest (*curl_api.EVP_Digest)
#define EVP_EncodeBlock (*curl_api.EVP_EncodeBlock)
#define ASN1_STRING_length (*curl_api.ASN1_STRING_length)
#define ASN1_STRING_get0_data (*curl_api.ASN1_STRING_get0_data)
#define ASN1_TIME_to_tm (*curl_api.ASN1_TIME_to_tm)
#define GENERAL_NAMES_free (*curl_api.GENERAL_NAMES_free)
#endif

#endif
