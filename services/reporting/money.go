package reporting

import (
	"fmt"
	"strings"
)

// formatMoney renders an amount in minor units as a decimal amount and its
// currency, e.g. 1999 "EUR" → "19.99 EUR", using the currency's ISO 4217
// exponent (2 unless listed in minorDigits).
func formatMoney(minor int64, currency string) string {
	digits := minorDigits(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if digits == 0 {
		return fmt.Sprintf("%s%d %s", sign, minor, currency)
	}
	unit := int64(1)
	for range digits {
		unit *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, minor/unit, digits, minor%unit, currency)
}

// minorDigits returns the ISO 4217 exponent of currency: the digits after the
// decimal point of its minor unit.
func minorDigits(currency string) int {
	switch strings.ToUpper(currency) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	default:
		return 2
	}
}
