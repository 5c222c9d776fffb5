/*
 * phone - normalize phone numbers to E.164. See phone.h.
 *
 * The country table lists every ISO 3166-1 country with its calling code,
 * trunk prefix, usual international prefix and the range of lengths of
 * its national significant numbers (fixed, mobile and toll-free). The
 * facts come from the ITU-T E.164 assignments and national numbering
 * plans as collected by libphonenumber's metadata (v8.12.57), capped at
 * E.164's 15 digits. Territories without numbers of their own take the
 * code they are reached by (AQ, HM +672; BV +47; GS +500; PN +64; TF +262;
 * UM +1).
 *
 * It does not look anything up at run time and keeps no state.
 */
#include "phone.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXDIGITS 24            /* digits collected before giving up */

struct country {
	char a2[3];
	unsigned short cc;      /* calling code */
	char trunk[3];          /* national (trunk) prefix, "" if none */
	char idd[5];            /* usual international prefix */
	unsigned char min, max; /* national significant number, digits */
};

/* Sorted by a2: phone_country_valid() searches it. */
static const struct country countries[] = {
	{ "AD", 376, "", "00", 6, 9 },    /* Andorra */
	{ "AE", 971, "0", "00", 5, 12 },  /* United Arab Emirates */
	{ "AF", 93, "0", "00", 9, 9 },    /* Afghanistan */
	{ "AG", 1, "1", "011", 10, 10 },  /* Antigua and Barbuda */
	{ "AI", 1, "1", "011", 10, 10 },  /* Anguilla */
	{ "AL", 355, "0", "00", 7, 9 },   /* Albania */
	{ "AM", 374, "0", "00", 8, 8 },   /* Armenia */
	{ "AO", 244, "", "00", 9, 9 },    /* Angola */
	{ "AQ", 672, "", "00", 5, 6 },    /* Antarctica */
	{ "AR", 54, "0", "00", 10, 11 },  /* Argentina */
	{ "AS", 1, "1", "011", 10, 10 },  /* American Samoa */
	{ "AT", 43, "0", "00", 4, 13 },   /* Austria */
	{ "AU", 61, "0", "0011", 7, 10 }, /* Australia */
	{ "AW", 297, "", "00", 7, 7 },    /* Aruba */
	{ "AX", 358, "0", "00", 6, 10 },  /* Åland Islands */
	{ "AZ", 994, "0", "00", 9, 9 },   /* Azerbaijan */
	{ "BA", 387, "0", "00", 8, 9 },   /* Bosnia and Herzegovina */
	{ "BB", 1, "1", "011", 10, 10 },  /* Barbados */
	{ "BD", 880, "0", "00", 6, 10 },  /* Bangladesh */
	{ "BE", 32, "0", "00", 8, 9 },    /* Belgium */
	{ "BF", 226, "", "00", 8, 8 },    /* Burkina Faso */
	{ "BG", 359, "0", "00", 6, 9 },   /* Bulgaria */
	{ "BH", 973, "", "00", 8, 8 },    /* Bahrain */
	{ "BI", 257, "", "00", 8, 8 },    /* Burundi */
	{ "BJ", 229, "", "00", 8, 8 },    /* Benin */
	{ "BL", 590, "0", "00", 9, 9 },   /* Saint Barthélemy */
	{ "BM", 1, "1", "011", 10, 10 },  /* Bermuda */
	{ "BN", 673, "", "00", 7, 7 },    /* Brunei Darussalam */
	{ "BO", 591, "0", "00", 8, 9 },   /* Bolivia */
	{ "BQ", 599, "", "00", 7, 7 },    /* Bonaire, Sint Eustatius and. */
	{ "BR", 55, "0", "00", 9, 11 },   /* Brazil */
	{ "BS", 1, "1", "011", 10, 10 },  /* Bahamas */
	{ "BT", 975, "", "00", 7, 8 },    /* Bhutan */
	{ "BV", 47, "", "00", 8, 8 },     /* Bouvet Island */
	{ "BW", 267, "", "00", 7, 10 },   /* Botswana */
	{ "BY", 375, "8", "810", 6, 11 }, /* Belarus */
	{ "BZ", 501, "", "00", 7, 11 },   /* Belize */
	{ "CA", 1, "1", "011", 10, 10 },  /* Canada */
	{ "CC", 61, "0", "0011", 7, 10 }, /* Cocos (Keeling) Islands */
	{ "CD", 243, "0", "00", 7, 9 },   /* Congo, The Democratic Repub. */
	{ "CF", 236, "", "00", 8, 8 },    /* Central African Republic */
	{ "CG", 242, "", "00", 9, 9 },    /* Congo */
	{ "CH", 41, "0", "00", 9, 9 },    /* Switzerland */
	{ "CI", 225, "", "00", 10, 10 },  /* Côte d'Ivoire */
	{ "CK", 682, "", "00", 5, 5 },    /* Cook Islands */
	{ "CL", 56, "", "00", 9, 11 },    /* Chile */
	{ "CM", 237, "", "00", 8, 9 },    /* Cameroon */
	{ "CN", 86, "0", "00", 7, 12 },   /* China */
	{ "CO", 57, "0", "009", 10, 11 }, /* Colombia */
	{ "CR", 506, "", "00", 8, 10 },   /* Costa Rica */
	{ "CU", 53, "0", "119", 6, 10 },  /* Cuba */
	{ "CV", 238, "", "0", 7, 7 },     /* Cabo Verde */
	{ "CW", 599, "", "00", 7, 8 },    /* Curaçao */
	{ "CX", 61, "0", "0011", 7, 10 }, /* Christmas Island */
	{ "CY", 357, "", "00", 8, 8 },    /* Cyprus */
	{ "CZ", 420, "", "00", 9, 9 },    /* Czechia */
	{ "DE", 49, "0", "00", 5, 13 },   /* Germany */
	{ "DJ", 253, "", "00", 8, 8 },    /* Djibouti */
	{ "DK", 45, "", "00", 8, 8 },     /* Denmark */
	{ "DM", 1, "1", "011", 10, 10 },  /* Dominica */
	{ "DO", 1, "1", "011", 10, 10 },  /* Dominican Republic */
	{ "DZ", 213, "0", "00", 8, 9 },   /* Algeria */
	{ "EC", 593, "0", "00", 8, 11 },  /* Ecuador */
	{ "EE", 372, "", "00", 7, 10 },   /* Estonia */
	{ "EG", 20, "0", "00", 8, 10 },   /* Egypt */
	{ "EH", 212, "0", "00", 9, 9 },   /* Western Sahara */
	{ "ER", 291, "0", "00", 7, 7 },   /* Eritrea */
	{ "ES", 34, "", "00", 9, 9 },     /* Spain */
	{ "ET", 251, "0", "00", 9, 9 },   /* Ethiopia */
	{ "FI", 358, "0", "00", 5, 10 },  /* Finland */
	{ "FJ", 679, "", "00", 7, 11 },   /* Fiji */
	{ "FK", 500, "", "00", 5, 5 },    /* Falkland Islands (Malvinas) */
	{ "FM", 691, "", "00", 7, 7 },    /* Micronesia, Federated State. */
	{ "FO", 298, "", "00", 6, 6 },    /* Faroe Islands */
	{ "FR", 33, "0", "00", 9, 9 },    /* France */
	{ "GA", 241, "", "00", 7, 8 },    /* Gabon */
	{ "GB", 44, "0", "00", 7, 10 },   /* United Kingdom */
	{ "GD", 1, "1", "011", 10, 10 },  /* Grenada */
	{ "GE", 995, "0", "00", 9, 9 },   /* Georgia */
	{ "GF", 594, "0", "00", 9, 9 },   /* French Guiana */
	{ "GG", 44, "0", "00", 7, 10 },   /* Guernsey */
	{ "GH", 233, "0", "00", 8, 9 },   /* Ghana */
	{ "GI", 350, "", "00", 8, 8 },    /* Gibraltar */
	{ "GL", 299, "", "00", 6, 6 },    /* Greenland */
	{ "GM", 220, "", "00", 7, 7 },    /* Gambia */
	{ "GN", 224, "", "00", 8, 9 },    /* Guinea */
	{ "GP", 590, "0", "00", 9, 9 },   /* Guadeloupe */
	{ "GQ", 240, "", "00", 9, 9 },    /* Equatorial Guinea */
	{ "GR", 30, "", "00", 10, 12 },   /* Greece */
	{ "GS", 500, "", "00", 5, 5 },    /* South Georgia and the South. */
	{ "GT", 502, "", "00", 8, 11 },   /* Guatemala */
	{ "GU", 1, "1", "011", 10, 10 },  /* Guam */
	{ "GW", 245, "", "00", 9, 9 },    /* Guinea-Bissau */
	{ "GY", 592, "", "001", 7, 7 },   /* Guyana */
	{ "HK", 852, "", "001", 8, 9 },   /* Hong Kong */
	{ "HM", 672, "", "00", 6, 6 },    /* Heard Island and McDonald I. */
	{ "HN", 504, "", "00", 8, 11 },   /* Honduras */
	{ "HR", 385, "0", "00", 7, 9 },   /* Croatia */
	{ "HT", 509, "", "00", 8, 8 },    /* Haiti */
	{ "HU", 36, "06", "00", 8, 9 },   /* Hungary */
	{ "ID", 62, "0", "001", 7, 13 },  /* Indonesia */
	{ "IE", 353, "0", "00", 7, 10 },  /* Ireland */
	{ "IL", 972, "0", "00", 7, 12 },  /* Israel */
	{ "IM", 44, "0", "00", 10, 10 },  /* Isle of Man */
	{ "IN", 91, "0", "00", 8, 13 },   /* India */
	{ "IO", 246, "", "00", 7, 7 },    /* British Indian Ocean Territ. */
	{ "IQ", 964, "0", "00", 8, 10 },  /* Iraq */
	{ "IR", 98, "0", "00", 6, 10 },   /* Iran */
	{ "IS", 354, "", "00", 7, 9 },    /* Iceland */
	{ "IT", 39, "", "00", 6, 11 },    /* Italy */
	{ "JE", 44, "0", "00", 10, 10 },  /* Jersey */
	{ "JM", 1, "1", "011", 10, 10 },  /* Jamaica */
	{ "JO", 962, "0", "00", 8, 9 },   /* Jordan */
	{ "JP", 81, "0", "010", 8, 13 },  /* Japan */
	{ "KE", 254, "0", "000", 7, 10 }, /* Kenya */
	{ "KG", 996, "0", "00", 9, 10 },  /* Kyrgyzstan */
	{ "KH", 855, "0", "001", 8, 10 }, /* Cambodia */
	{ "KI", 686, "0", "00", 5, 8 },   /* Kiribati */
	{ "KM", 269, "", "00", 7, 7 },    /* Comoros */
	{ "KN", 1, "1", "011", 10, 10 },  /* Saint Kitts and Nevis */
	{ "KP", 850, "0", "00", 8, 10 },  /* North Korea */
	{ "KR", 82, "0", "001", 5, 13 },  /* South Korea */
	{ "KW", 965, "", "00", 7, 8 },    /* Kuwait */
	{ "KY", 1, "1", "011", 10, 10 },  /* Cayman Islands */
	{ "KZ", 7, "8", "810", 10, 14 },  /* Kazakhstan */
	{ "LA", 856, "0", "00", 8, 10 },  /* Laos */
	{ "LB", 961, "0", "00", 7, 8 },   /* Lebanon */
	{ "LC", 1, "1", "011", 10, 10 },  /* Saint Lucia */
	{ "LI", 423, "0", "00", 7, 9 },   /* Liechtenstein */
	{ "LK", 94, "0", "00", 9, 9 },    /* Sri Lanka */
	{ "LR", 231, "0", "00", 7, 9 },   /* Liberia */
	{ "LS", 266, "", "00", 8, 8 },    /* Lesotho */
	{ "LT", 370, "8", "00", 8, 8 },   /* Lithuania */
	{ "LU", 352, "", "00", 4, 11 },   /* Luxembourg */
	{ "LV", 371, "", "00", 8, 8 },    /* Latvia */
	{ "LY", 218, "0", "00", 9, 9 },   /* Libya */
	{ "MA", 212, "0", "00", 9, 9 },   /* Morocco */
	{ "MC", 377, "0", "00", 8, 9 },   /* Monaco */
	{ "MD", 373, "0", "00", 8, 8 },   /* Moldova */
	{ "ME", 382, "0", "00", 8, 9 },   /* Montenegro */
	{ "MF", 590, "0", "00", 9, 9 },   /* Saint Martin (French part) */
	{ "MG", 261, "0", "00", 9, 9 },   /* Madagascar */
	{ "MH", 692, "1", "011", 7, 7 },  /* Marshall Islands */
	{ "MK", 389, "0", "00", 8, 8 },   /* North Macedonia */
	{ "ML", 223, "", "00", 8, 8 },    /* Mali */
	{ "MM", 95, "0", "00", 6, 10 },   /* Myanmar */
	{ "MN", 976, "0", "001", 8, 10 }, /* Mongolia */
	{ "MO", 853, "", "00", 7, 8 },    /* Macao */
	{ "MP", 1, "1", "011", 10, 10 },  /* Northern Mariana Islands */
	{ "MQ", 596, "0", "00", 9, 9 },   /* Martinique */
	{ "MR", 222, "", "00", 8, 8 },    /* Mauritania */
	{ "MS", 1, "1", "011", 10, 10 },  /* Montserrat */
	{ "MT", 356, "", "00", 8, 8 },    /* Malta */
	{ "MU", 230, "", "020", 7, 10 },  /* Mauritius */
	{ "MV", 960, "", "00", 7, 10 },   /* Maldives */
	{ "MW", 265, "0", "00", 7, 9 },   /* Malawi */
	{ "MX", 52, "01", "00", 10, 11 }, /* Mexico */
	{ "MY", 60, "0", "00", 8, 10 },   /* Malaysia */
	{ "MZ", 258, "", "00", 8, 9 },    /* Mozambique */
	{ "NA", 264, "0", "00", 8, 9 },   /* Namibia */
	{ "NC", 687, "", "00", 6, 6 },    /* New Caledonia */
	{ "NE", 227, "", "00", 8, 8 },    /* Niger */
	{ "NF", 672, "", "00", 6, 6 },    /* Norfolk Island */
	{ "NG", 234, "0", "009", 7, 12 }, /* Nigeria */
	{ "NI", 505, "", "00", 8, 8 },    /* Nicaragua */
	{ "NL", 31, "0", "00", 7, 11 },   /* Netherlands */
	{ "NO", 47, "", "00", 8, 8 },     /* Norway */
	{ "NP", 977, "0", "00", 8, 11 },  /* Nepal */
	{ "NR", 674, "", "00", 7, 7 },    /* Nauru */
	{ "NU", 683, "", "00", 4, 7 },    /* Niue */
	{ "NZ", 64, "0", "00", 8, 10 },   /* New Zealand */
	{ "OM", 968, "", "00", 7, 9 },    /* Oman */
	{ "PA", 507, "", "00", 7, 11 },   /* Panama */
	{ "PE", 51, "0", "00", 8, 9 },    /* Peru */
	{ "PF", 689, "", "00", 8, 9 },    /* French Polynesia */
	{ "PG", 675, "", "00", 7, 8 },    /* Papua New Guinea */
	{ "PH", 63, "0", "00", 6, 13 },   /* Philippines */
	{ "PK", 92, "0", "00", 8, 11 },   /* Pakistan */
	{ "PL", 48, "", "00", 7, 10 },    /* Poland */
	{ "PM", 508, "0", "00", 6, 9 },   /* Saint Pierre and Miquelon */
	{ "PN", 64, "0", "00", 8, 9 },    /* Pitcairn */
	{ "PR", 1, "1", "011", 10, 10 },  /* Puerto Rico */
	{ "PS", 970, "0", "00", 8, 10 },  /* Palestine, State of */
	{ "PT", 351, "", "00", 9, 9 },    /* Portugal */
	{ "PW", 680, "", "011", 7, 7 },   /* Palau */
	{ "PY", 595, "0", "00", 7, 11 },  /* Paraguay */
	{ "QA", 974, "", "00", 7, 9 },    /* Qatar */
	{ "RE", 262, "0", "00", 9, 9 },   /* Réunion */
	{ "RO", 40, "0", "00", 6, 9 },    /* Romania */
	{ "RS", 381, "0", "00", 6, 12 },  /* Serbia */
	{ "RU", 7, "8", "810", 10, 14 },  /* Russian Federation */
	{ "RW", 250, "0", "00", 8, 9 },   /* Rwanda */
	{ "SA", 966, "0", "00", 9, 10 },  /* Saudi Arabia */
	{ "SB", 677, "", "00", 5, 7 },    /* Solomon Islands */
	{ "SC", 248, "", "00", 7, 7 },    /* Seychelles */
	{ "SD", 249, "0", "00", 9, 9 },   /* Sudan */
	{ "SE", 46, "0", "00", 6, 9 },    /* Sweden */
	{ "SG", 65, "", "001", 8, 11 },   /* Singapore */
	{ "SH", 290, "", "00", 4, 5 },    /* Saint Helena, Ascension and. */
	{ "SI", 386, "0", "00", 6, 8 },   /* Slovenia */
	{ "SJ", 47, "", "00", 8, 8 },     /* Svalbard and Jan Mayen */
	{ "SK", 421, "0", "00", 6, 9 },   /* Slovakia */
	{ "SL", 232, "0", "00", 8, 8 },   /* Sierra Leone */
	{ "SM", 378, "", "00", 8, 10 },   /* San Marino */
	{ "SN", 221, "", "00", 9, 9 },    /* Senegal */
	{ "SO", 252, "0", "00", 6, 9 },   /* Somalia */
	{ "SR", 597, "", "00", 6, 7 },    /* Suriname */
	{ "SS", 211, "0", "00", 9, 9 },   /* South Sudan */
	{ "ST", 239, "", "00", 7, 7 },    /* Sao Tome and Principe */
	{ "SV", 503, "", "00", 7, 11 },   /* El Salvador */
	{ "SX", 1, "1", "011", 10, 10 },  /* Sint Maarten (Dutch part) */
	{ "SY", 963, "0", "00", 8, 9 },   /* Syria */
	{ "SZ", 268, "", "00", 8, 8 },    /* Eswatini */
	{ "TC", 1, "1", "011", 10, 10 },  /* Turks and Caicos Islands */
	{ "TD", 235, "", "00", 8, 8 },    /* Chad */
	{ "TF", 262, "0", "00", 9, 9 },   /* French Southern Territories */
	{ "TG", 228, "", "00", 8, 8 },    /* Togo */
	{ "TH", 66, "0", "001", 8, 13 },  /* Thailand */
	{ "TJ", 992, "", "810", 9, 9 },   /* Tajikistan */
	{ "TK", 690, "", "00", 4, 7 },    /* Tokelau */
	{ "TL", 670, "", "00", 7, 8 },    /* Timor-Leste */
	{ "TM", 993, "8", "810", 8, 8 },  /* Turkmenistan */
	{ "TN", 216, "", "00", 8, 8 },    /* Tunisia */
	{ "TO", 676, "", "00", 5, 7 },    /* Tonga */
	{ "TR", 90, "0", "00", 10, 13 },  /* Türkiye */
	{ "TT", 1, "1", "011", 10, 10 },  /* Trinidad and Tobago */
	{ "TV", 688, "", "00", 5, 7 },    /* Tuvalu */
	{ "TW", 886, "0", "002", 8, 9 },  /* Taiwan */
	{ "TZ", 255, "0", "000", 9, 9 },  /* Tanzania */
	{ "UA", 380, "0", "00", 9, 10 },  /* Ukraine */
	{ "UG", 256, "0", "000", 9, 9 },  /* Uganda */
	{ "UM", 1, "1", "011", 10, 10 },  /* United States Minor Outlyin. */
	{ "US", 1, "1", "011", 10, 10 },  /* United States */
	{ "UY", 598, "0", "00", 7, 10 },  /* Uruguay */
	{ "UZ", 998, "8", "810", 9, 9 },  /* Uzbekistan */
	{ "VA", 39, "", "00", 6, 11 },    /* Holy See (Vatican City Stat. */
	{ "VC", 1, "1", "011", 10, 10 },  /* Saint Vincent and the Grena. */
	{ "VE", 58, "0", "00", 10, 10 },  /* Venezuela */
	{ "VG", 1, "1", "011", 10, 10 },  /* Virgin Islands, British */
	{ "VI", 1, "1", "011", 10, 10 },  /* Virgin Islands, U.S. */
	{ "VN", 84, "0", "00", 8, 10 },   /* Vietnam */
	{ "VU", 678, "", "00", 5, 7 },    /* Vanuatu */
	{ "WF", 681, "", "00", 6, 9 },    /* Wallis and Futuna */
	{ "WS", 685, "", "0", 5, 10 },    /* Samoa */
	{ "YE", 967, "0", "00", 7, 9 },   /* Yemen */
	{ "YT", 262, "0", "00", 9, 9 },   /* Mayotte */
	{ "ZA", 27, "0", "00", 5, 9 },    /* South Africa */
	{ "ZM", 260, "0", "00", 9, 9 },   /* Zambia */
	{ "ZW", 263, "0", "00", 5, 10 },  /* Zimbabwe */
};

#define NCOUNTRIES (sizeof(countries) / sizeof(countries[0]))

/* Regions outside ISO 3166-1 that have numbers of their own. */
static const struct country regions[] = {
	{ "AC", 247, "", "00", 5, 5 },    /* Ascension Island */
	{ "TA", 290, "", "00", 4, 4 },    /* Tristan da Cunha */
	{ "XK", 383, "0", "00", 8, 9 },   /* Kosovo */
};

/* The main region of calling codes that several regions share. */
static const struct {
	unsigned short cc;
	char a2[3];
	int complete;           /* the prefixes below tell every region */
} shared[] = {
	{ 1, "US", 1 }, { 7, "RU", 1 }, { 39, "IT", 1 }, { 44, "GB", 1 },
	{ 47, "NO", 1 }, { 61, "AU", 1 }, { 64, "NZ", 0 }, { 212, "MA", 1 },
	{ 262, "RE", 1 }, { 290, "SH", 1 }, { 358, "FI", 1 },
	{ 500, "FK", 0 }, { 590, "GP", 0 }, { 599, "CW", 1 },
	{ 672, "NF", 0 },
};

/* Leading digits of the national number that tell the other regions. */
static const struct {
	unsigned short cc;
	char prefix[6];
	char a2[3];
} leading[] = {
	{ 7, "33", "KZ" }, { 7, "7", "KZ" },
	{ 39, "06698", "VA" },
	{ 44, "1481", "GG" }, { 44, "7781", "GG" }, { 44, "7839", "GG" },
	{ 44, "7911", "GG" },
	{ 44, "1534", "JE" }, { 44, "7509", "JE" }, { 44, "7797", "JE" },
	{ 44, "7829", "JE" }, { 44, "7937", "JE" },
	{ 44, "1624", "IM" }, { 44, "74576", "IM" }, { 44, "7524", "IM" },
	{ 44, "7624", "IM" },
	{ 47, "79", "SJ" },
	{ 61, "89162", "CC" }, { 61, "89164", "CX" },
	{ 212, "5288", "EH" }, { 212, "5289", "EH" },
	{ 262, "269", "YT" }, { 262, "639", "YT" },
	{ 290, "8", "TA" },
	{ 358, "18", "AX" },
	{ 599, "3", "BQ" }, { 599, "4", "BQ" }, { 599, "7", "BQ" },
};

/* North American area codes outside the United States, sorted. */
static const struct {
	unsigned short npa;
	char a2[3];
} nanp[] = {
	{ 204, "CA" }, { 226, "CA" }, { 236, "CA" }, { 242, "BS" },
	{ 246, "BB" }, { 249, "CA" }, { 250, "CA" }, { 257, "CA" },
	{ 263, "CA" }, { 264, "AI" }, { 268, "AG" }, { 284, "VG" },
	{ 289, "CA" }, { 306, "CA" }, { 340, "VI" }, { 343, "CA" },
	{ 345, "KY" }, { 354, "CA" }, { 365, "CA" }, { 367, "CA" },
	{ 368, "CA" }, { 382, "CA" }, { 403, "CA" }, { 416, "CA" },
	{ 418, "CA" }, { 428, "CA" }, { 431, "CA" }, { 437, "CA" },
	{ 438, "CA" }, { 441, "BM" }, { 450, "CA" }, { 468, "CA" },
	{ 473, "GD" }, { 474, "CA" }, { 506, "CA" }, { 514, "CA" },
	{ 519, "CA" }, { 548, "CA" }, { 579, "CA" }, { 581, "CA" },
	{ 584, "CA" }, { 587, "CA" }, { 600, "CA" }, { 604, "CA" },
	{ 613, "CA" }, { 622, "CA" }, { 639, "CA" }, { 647, "CA" },
	{ 649, "TC" }, { 658, "JM" }, { 664, "MS" }, { 670, "MP" },
	{ 671, "GU" }, { 672, "CA" }, { 683, "CA" }, { 684, "AS" },
	{ 705, "CA" }, { 709, "CA" }, { 721, "SX" }, { 742, "CA" },
	{ 753, "CA" }, { 758, "LC" }, { 767, "DM" }, { 778, "CA" },
	{ 780, "CA" }, { 782, "CA" }, { 784, "VC" }, { 787, "PR" },
	{ 807, "CA" }, { 809, "DO" }, { 819, "CA" }, { 825, "CA" },
	{ 829, "DO" }, { 849, "DO" }, { 867, "CA" }, { 868, "TT" },
	{ 869, "KN" }, { 873, "CA" }, { 876, "JM" }, { 879, "CA" },
	{ 902, "CA" }, { 905, "CA" }, { 939, "PR" }, { 942, "CA" },
};

/* Calling codes of global services (freephone, satellite, networks). */
static const unsigned short global_codes[] = { 800, 808, 870, 878, 881,
	882, 883, 888, 979 };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int
upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Length of prefix if s starts with it (ASCII, any case), else 0. */
static size_t
has_prefix(const char *s, const char *prefix)
{
	size_t i;

	for (i = 0; prefix[i]; i++)
		if (upper((unsigned char)s[i]) !=
		    upper((unsigned char)prefix[i]))
			return 0;
	return i;
}

/* The ISO country called a2 (either case), or NULL. */
static const struct country *
find_iso(const char *a2)
{
	char k[3];
	size_t lo = 0, hi = NCOUNTRIES;

	if (!a2 || !is_alpha((unsigned char)a2[0]) ||
	    !is_alpha((unsigned char)a2[1]) || a2[2] != '\0')
		return NULL;
	k[0] = (char)upper((unsigned char)a2[0]);
	k[1] = (char)upper((unsigned char)a2[1]);
	k[2] = '\0';
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(k, countries[mid].a2);

		if (d == 0)
			return &countries[mid];
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Any region, ISO or not, called a2 (upper case). */
static const struct country *
find_region(const char *a2)
{
	const struct country *c = find_iso(a2);

	for (size_t i = 0; !c && i < N(regions); i++)
		if (strcmp(regions[i].a2, a2) == 0)
			c = &regions[i];
	return c;
}

/* The main region of calling code cc, or NULL if none has it. */
static const struct country *
main_region(unsigned cc)
{
	for (size_t i = 0; i < N(shared); i++)
		if (shared[i].cc == cc)
			return find_region(shared[i].a2);
	for (size_t i = 0; i < NCOUNTRIES; i++)
		if (countries[i].cc == cc)
			return &countries[i];
	for (size_t i = 0; i < N(regions); i++)
		if (regions[i].cc == cc)
			return &regions[i];
	return NULL;
}

/* The region a national number nsn under code cc belongs to (best guess),
 * given home, the main region of cc, and def, the default country. */
static const struct country *
infer_region(const struct country *home, const char *nsn,
    const struct country *def)
{
	size_t i;

	if (home->cc == 1) {
		size_t lo = 0, hi = N(nanp);
		unsigned npa;

		if (strlen(nsn) < 3)
			return home;
		npa = (unsigned)((nsn[0] - '0') * 100 + (nsn[1] - '0') * 10 +
		    (nsn[2] - '0'));
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (nanp[mid].npa == npa)
				return find_region(nanp[mid].a2);
			if (npa < nanp[mid].npa)
				hi = mid;
			else
				lo = mid + 1;
		}
		return home;
	}
	for (i = 0; i < N(leading); i++)
		if (leading[i].cc == home->cc && strncmp(nsn, leading[i].prefix,
		    strlen(leading[i].prefix)) == 0)
			return find_region(leading[i].a2);
	for (i = 0; i < N(shared); i++)
		if (shared[i].cc == home->cc)
			break;
	if (i < N(shared) && !shared[i].complete && def && def->cc == home->cc)
		return def;
	return home;
}

static int
fail(struct phone_number *out, char *err, size_t errn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct phone_number *out, char *err, size_t errn, const char *fmt, ...)
{
	va_list ap;

	memset(out, 0, sizeof(*out));
	if (err && errn) {
		va_start(ap, fmt);
		vsnprintf(err, errn, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * An extension at s, up to the end: a marker, optional spaces, dots or a
 * colon, 1 to 10 digits, optional spaces. Copies the digits to ext and
 * returns 1, or returns 0.
 */
static int
parse_extension(const char *s, char *ext)
{
	static const char *const markers[] = { ";ext=", "extension", "ext",
		"x", "#" };
	size_t i, n;

	for (i = 0; i < N(markers); i++) {
		size_t ml = has_prefix(s, markers[i]);

		if (ml) {
			s += ml;
			break;
		}
	}
	if (i == N(markers))
		return 0;
	while (*s == ' ' || *s == '\t' || *s == '.' || *s == ':')
		s++;
	for (n = 0; is_digit((unsigned char)s[n]); n++)
		if (n == PHONE_EXT_MAX - 1)
			return 0;
	if (n == 0)
		return 0;
	memcpy(ext, s, n);
	ext[n] = '\0';
	for (s += n; *s == ' ' || *s == '\t'; s++)
		;
	return *s == '\0';
}

/*
 * Length of a UTF-8 separator at s (no-break spaces, Unicode spaces,
 * hyphens, dashes, minus sign, fullwidth hyphen and parentheses), or 0.
 */
static size_t
utf8_separator(const unsigned char *s)
{
	if (s[0] == 0xc2 && s[1] == 0xa0)
		return 2;                               /* U+00A0 */
	if (s[0] == 0xe2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x95) ||
	    s[2] == 0xaf))
		return 3;                               /* U+2000-2015, 202F */
	if (s[0] == 0xe2 && s[1] == 0x88 && s[2] == 0x92)
		return 3;                               /* U+2212 */
	if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;                               /* U+3000 */
	if (s[0] == 0xef && s[1] == 0xbc && (s[2] == 0x88 || s[2] == 0x89 ||
	    s[2] == 0x8d))
		return 3;                               /* U+FF08, FF09, FF0D */
	return 0;
}

/*
 * Does s start with the trunk prefix of c (or Lithuania's new one)? Its
 * length, or 0. A national number never starts with a trunk prefix of 0
 * or 1, so those are always dropped; one of 8 (Russia and its neighbours)
 * may be the first digit of the number itself (St Petersburg is 812):
 * callers drop it only when the length says so (see trunk_ambiguous).
 */
static size_t
trunk_len(const struct country *c, const char *s)
{
	size_t tl = strlen(c->trunk);

	if (tl && strncmp(s, c->trunk, tl) == 0)
		return tl;
	if (strcmp(c->a2, "LT") == 0 && s[0] == '0')
		return 1;               /* 8 became 0 in 2025; both in use */
	return 0;
}

static int
trunk_ambiguous(const char *s)
{
	return s[0] == '8';
}

static int
fits(const struct country *c, size_t n)
{
	return n >= c->min && n <= c->max;
}

int
phone_parse(const char *in, const char *default_country,
    struct phone_number *out, char *err, size_t errn)
{
	const struct country *def = NULL, *home, *reg;
	char digits[MAXDIGITS + 1], cctext[8];
	const char *p, *nsn;
	size_t nd = 0, n, len, cclen = 0, skip = 0, tl;
	long paren0 = -1;
	int plus = 0, intl = 0;
	unsigned cc = 0;

	memset(out, 0, sizeof(*out));
	if (default_country && *default_country &&
	    !(def = find_iso(default_country)))
		return fail(out, err, errn, "unknown default country '%.8s'",
		    default_country);
	if (!in)
		return fail(out, err, errn, "no number");
	if ((len = strlen(in)) > PHONE_INPUT_MAX)
		return fail(out, err, errn, "longer than %d characters",
		    PHONE_INPUT_MAX);
	for (p = in; *p == ' ' || *p == '\t'; p++)
		;
	p += has_prefix(p, "tel:");
	while (*p) {
		const unsigned char c = (unsigned char)*p;
		const unsigned char c1 = c ? (unsigned char)p[1] : 0;
		const unsigned char c2 = c1 ? (unsigned char)p[2] : 0;
		const int wide = c == 0xef && c1 == 0xbc;   /* U+FF00.. */
		size_t sl;

		if (is_digit(c) || (wide && c2 >= 0x90 && c2 <= 0x99)) {
			if (nd == MAXDIGITS)
				return fail(out, err, errn, "too many digits");
			if (is_digit(c)) {
				digits[nd++] = (char)c;
				p++;
			} else {                /* fullwidth digit */
				digits[nd++] = (char)('0' + c2 - 0x90);
				p += 3;
			}
			continue;
		}
		if (c == '+' || (wide && c2 == 0x8b)) {
			if (nd || plus)
				return fail(out, err, errn, "'+' is only "
				    "allowed before the country code");
			plus = 1;
			p += c == '+' ? 1 : 3;
			continue;
		}
		if (c == '(' && p[1] == '0' && p[2] == ')') {
			if (nd == MAXDIGITS)
				return fail(out, err, errn, "too many digits");
			paren0 = (long)nd;
			digits[nd++] = '0';
			p += 3;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/' ||
		    c == '(' || c == ')') {
			p++;
			continue;
		}
		if ((sl = utf8_separator((const unsigned char *)p)) != 0) {
			p += sl;
			continue;
		}
		if (nd && (is_alpha(c) || c == '#' || c == ';') &&
		    parse_extension(p, out->extension))
			break;
		if (is_alpha(c))
			return fail(out, err, errn, "letters in the number");
		if (c >= 0x80)
			return fail(out, err, errn, "unexpected non-ASCII "
			    "character in the number");
		if (c < 0x20 || c == 0x7f)
			return fail(out, err, errn, "control character in the "
			    "number");
		return fail(out, err, errn, "unexpected character '%c' in the "
		    "number", c);
	}
	digits[nd] = '\0';
	if (nd == 0)
		return fail(out, err, errn, "no digits in the number");

	/* International prefix: +, 00, or the default country's own. */
	if (plus) {
		intl = 1;
	} else {
		size_t il = def ? strlen(def->idd) : 0;

		if (il && strncmp(digits, def->idd, il) == 0 && nd > il)
			skip = il;
		if (nd > 2 && digits[0] == '0' && digits[1] == '0' && skip < 2)
			skip = 2;
		intl = skip > 0;
	}
	if (intl) {
		const char *d = digits + skip;

		n = nd - skip;
		if (n == 0)
			return fail(out, err, errn, "no country code after the "
			    "international prefix");
		if (d[0] == '0')
			return fail(out, err, errn, "a country code cannot "
			    "start with 0");
		for (cclen = 1; cclen <= 3 && cclen <= n; cclen++) {
			cc = cc * 10 + (unsigned)(d[cclen - 1] - '0');
			if ((home = main_region(cc)) != NULL)
				break;
		}
		if (cclen > 3 || cclen > n) {
			memcpy(cctext, d, n < 3 ? n : 3);
			cctext[n < 3 ? n : 3] = '\0';
			for (size_t i = 0; i < N(global_codes); i++)
				if (n >= 3 && (unsigned)atoi(cctext) ==
				    global_codes[i])
					return fail(out, err, errn, "+%s is a "
					    "global service code, not a "
					    "country's", cctext);
			return fail(out, err, errn, "unknown country code +%s",
			    cctext);
		}
		nsn = d + cclen;
		n -= cclen;
		/* A trunk prefix after the code: "+44 (0)20", "+44 020". */
		if (paren0 == (long)(skip + cclen) && home->trunk[0] == '0') {
			nsn++;
			n--;
		} else if ((tl = trunk_len(home, nsn)) != 0 &&
		    (!trunk_ambiguous(nsn) || (n > home->max &&
		    fits(home, n - tl)))) {
			nsn += tl;
			n -= tl;
		}
	} else {
		if (!def)
			return fail(out, err, errn, "no country code: write "
			    "the number with + and its country code, or give "
			    "a default country");
		home = main_region(def->cc);
		cc = def->cc;
		nsn = digits;
		n = nd;
		if ((tl = trunk_len(def, nsn)) != 0 && (!trunk_ambiguous(nsn) ||
		    !(n - tl < def->min && fits(def, n)))) {
			nsn += tl;
			n -= tl;
		}
		/* The country code written without "+": "44 7911 123456". */
		snprintf(cctext, sizeof(cctext), "%u", cc);
		cclen = strlen(cctext);
		if (n > def->max && strncmp(nsn, cctext, cclen) == 0) {
			const char *r = nsn + cclen;
			size_t rn = n - cclen;

			if ((tl = trunk_len(def, r)) != 0 &&
			    (!trunk_ambiguous(r) || (!fits(def, rn) &&
			    fits(def, rn - tl)))) {
				r += tl;
				rn -= tl;
			}
			if (fits(def, rn)) {
				nsn = r;
				n = rn;
			}
		}
	}
	if (n == 0)
		return fail(out, err, errn, "no number after the country code "
		    "+%u", cc);
	memcpy(out->national, nsn, n < sizeof(out->national) ? n :
	    sizeof(out->national) - 1);
	reg = infer_region(home, out->national, def);
	if (n < reg->min)
		return fail(out, err, errn, "too short for %s: %zu digit%s "
		    "after +%u, at least %u expected", reg->a2, n,
		    n == 1 ? "" : "s", cc, reg->min);
	if (n > reg->max)
		return fail(out, err, errn, "too long for %s: %zu digits after "
		    "+%u, at most %u expected", reg->a2, n, cc, reg->max);
	if (cc == 1) {
		if (nsn[0] == '0' || nsn[0] == '1')
			return fail(out, err, errn, "not a North American "
			    "number: the area code cannot start with %c",
			    nsn[0]);
		if (nsn[1] == '1' && nsn[2] == '1')
			return fail(out, err, errn, "not a North American "
			    "number: %.3s is a service code, not an area code",
			    nsn);
		if (nsn[3] == '0' || nsn[3] == '1')
			return fail(out, err, errn, "not a North American "
			    "number: the exchange after the area code cannot "
			    "start with %c", nsn[3]);
	}
	/* At most 15 digits: every country's max allows for its code. */
	snprintf(cctext, sizeof(cctext), "%u", cc);
	cclen = strlen(cctext);
	if (cclen + n > 15)
		return fail(out, err, errn, "longer than the 15 digits of an "
		    "international number");
	out->e164[0] = '+';
	memcpy(out->e164 + 1, cctext, cclen);
	memcpy(out->e164 + 1 + cclen, out->national, n + 1);
	memcpy(out->country, reg->a2, sizeof(out->country));
	out->calling_code = (int)cc;
	return 0;
}

int
phone_normalize(const char *in, const char *default_country, char *out,
    size_t n, char *err, size_t errn)
{
	struct phone_number pn;
	size_t len;

	if (phone_parse(in, default_country, &pn, err, errn) < 0)
		return -1;
	len = strlen(pn.e164);
	if (!out || n <= len) {
		if (err && errn)
			snprintf(err, errn, "output buffer too small");
		return -1;
	}
	memcpy(out, pn.e164, len + 1);
	return 0;
}

int
phone_country_valid(const char *alpha2)
{
	return find_iso(alpha2) != NULL;
}

int
phone_calling_code(const char *alpha2)
{
	const struct country *c = find_iso(alpha2);

	return c ? c->cc : 0;
}
