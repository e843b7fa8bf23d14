import java.io.File;
import java.util.ArrayList;
import java.util.Map;
import tflstm.sample.TflstmStateFile;

/**
 * Drives android_assets/TflstmStateFile.java for tests/test_state_file_interop.py.
 *
 * <p>{@code copy IN OUT FINGERPRINT}: reads IN, prints one line per state (name, type code,
 * shape as 1x16, hex of its bytes), then writes the same states to OUT. On a refused file it prints
 * {@code refused: <message>} and exits with status 3.
 */
public final class StateFileInterop {
    public static void main(String[] args) throws Exception {
        Map<String, TflstmStateFile.Entry> states;
        try {
            states = TflstmStateFile.read(new File(args[1]), args[3]);
        } catch (IllegalArgumentException e) {
            System.out.println("refused: " + e.getMessage());
            System.exit(3);
            return;
        }
        for (TflstmStateFile.Entry entry : states.values()) {
            StringBuilder hex = new StringBuilder();
            for (byte b : entry.data) hex.append(String.format("%02x", b));
            StringBuilder shape = new StringBuilder();
            for (int d : entry.shape) shape.append(shape.length() == 0 ? "" : "x").append(d);
            System.out.println(entry.name + " " + entry.type + " " + shape + " " + hex);
        }
        TflstmStateFile.write(new File(args[2]), new ArrayList<>(states.values()), args[3]);
    }
}
